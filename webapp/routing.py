"""URL converters: database ids within the integer range, runtime ids as the bytes the client sent."""
from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes, urlsplit

from flask import has_request_context, request
from werkzeug.routing import BaseConverter, IntegerConverter

from webapp.models import MAX_DB_ID


class DatabaseIdConverter(IntegerConverter):
    """`<int:…>` in every route: ids above the database's integer range are a plain 404, never a 500."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_DB_ID)
        super().__init__(map, *args, **kwargs)


class RuntimeIdConverter(BaseConverter):
    """`<runtime_id:…>`: a runtime's opaque id in the path, any non-empty string. Unlike `path` it may start with
    `/` or hold `//` (a client sends "/lead" as %2Flead; WSGI decodes it); its rules set merge_slashes=False, so
    it is never merged into another id. Control characters match too: the service answers them with a 422, and
    bytes that are not UTF-8 with a 400."""

    regex = r"[\s\S]+"
    part_isolating = False
    weight = 200  # as `path`: a rule with a fixed segment in its place wins

    def to_python(self, value: str) -> str:
        """The id as sent. Werkzeug decodes the path as UTF-8 with U+FFFD for bytes that are not (%FF, %C3%28), which
        would pass for a real id: those bytes come instead as lone surrogates (Python's surrogateescape), which no id
        holds and the service refuses."""
        if "\ufffd" in value and has_request_context():
            return _undecodable_bytes_as_surrogates(value, _path_bytes(request.environ))
        return value

    def to_url(self, value: str) -> str:
        """url_for percent-encodes every reserved character, `/` included: the id comes back whole."""
        return quote(value, safe="")


def _path_bytes(environ: dict) -> bytes:
    """The request's path, percent-decoded, as the bytes the client sent. PATH_INFO may have lost them (werkzeug's
    server and test client decode it as UTF-8 with U+FFFD already), so the request target is read instead when the
    server keeps it (RAW_URI, REQUEST_URI; WSGI strings hold one byte a character)."""
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if target:
        return unquote_to_bytes(urlsplit(target.encode("latin-1")).path)
    return environ.get("PATH_INFO", "").encode("latin-1")


def _undecodable_bytes_as_surrogates(value: str, path: bytes) -> str:
    """`value`, a part of the `path` as werkzeug decoded it, with its bytes that are not UTF-8 as lone surrogates;
    unchanged when the whole path is UTF-8 (a U+FFFD sent as %EF%BF%BD is one).

    The rest of a runtime_id route is literals and integers, which are UTF-8: the id's bytes are the path's bytes
    between the text before it and the text after it."""
    try:
        path.decode()
        return value
    except UnicodeDecodeError:
        pass
    decoded = path.decode(errors="replace")  # as werkzeug decodes it
    start = decoded.find(value)
    if start < 0:  # a middleware rewrote the path after the server read it: nothing to compare the id with
        return value
    head, tail = len(decoded[:start].encode()), len(decoded[start + len(value):].encode())
    return path[head:len(path) - tail].decode(errors="surrogateescape")
