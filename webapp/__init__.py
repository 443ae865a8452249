"""The A/B experiments web app: create_app() wires extensions, blueprints, errors and the CLI."""
from __future__ import annotations

import json
import os
from urllib.parse import quote, unquote_to_bytes, urlsplit
from pathlib import Path

import sqlalchemy as sa
from werkzeug.routing import BaseConverter, IntegerConverter
from flask import Flask, abort, g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from . import config as settings
from .config import Config, ConfigError, normalise_database_url
from .extensions import csrf, db, login_manager, migrate
from .models import MAX_DB_ID, json_text

API_PREFIX = "/api/"

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: type[Config] | dict | None = None) -> Flask:
    """Application factory: `config` is a Config class or a dict of overrides.

    A setting it cannot start with (a bad environment variable) raises ConfigError, whose message names it."""
    app = Flask(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)

    app.config["APP_ENV"] = settings.app_env(app.config.get("APP_ENV", "development"))
    session_secure = settings.flag("SESSION_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE"))
    # The remember-me cookie logs a browser in as the session cookie does: it follows it unless set on its own.
    remember_secure = app.config.get("REMEMBER_COOKIE_SECURE")
    app.config["SESSION_COOKIE_SECURE"] = session_secure
    app.config["REMEMBER_COOKIE_SECURE"] = (session_secure if remember_secure is None
                                            else settings.flag("REMEMBER_COOKIE_SECURE", remember_secure))
    _configure_secret_key(app)
    _configure_database(app)
    app.session_interface = CookieSessionsOutsideApi()

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"

    with app.app_context():
        _configure_sqlite(app)

    app.url_map.converters["int"] = DatabaseIdConverter  # before any route is added
    app.url_map.converters["runtime_id"] = RuntimeIdConverter
    from . import errors, views
    from .api import bp as api_bp

    views.register(app)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # token-authenticated; every other route keeps CSRF
    errors.register(app)

    from .cli import register as register_cli

    register_cli(app)
    _register_template_helpers(app)
    app.before_request(_reject_nul_bytes)
    app.after_request(_security_headers)
    return app


# Scripts only from this origin (the vendored htmx and Chart.js, app.js): no inline script or event handler, so
# markup that escaped its escaping could not run. Inline styles stay allowed (style attributes in templates, the
# indicator styles htmx adds). No page may be framed (clickjacking), nor forms post elsewhere.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _security_headers(response):
    """The headers above on every response (a view that set one of its own keeps it)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


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


class CookieSessionsOutsideApi(SecureCookieSessionInterface):
    """The signed-cookie session for the web app; none for the token-authenticated JSON API, which never reads
    it (it would only cost the runtime's hot path a serializer per request)."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(API_PREFIX):  # opened before routing: no blueprint known yet
            return self.make_null_session(app)
        return super().open_session(app, request)


def _reject_nul_bytes() -> None:
    """No database stores NUL in text (PostgreSQL refuses it): refuse it in the path, query and form.

    The JSON API validates its own inputs (ids refuse control characters, text and fields refuse NUL) and reads
    no query string or form, so it skips this (reading `request.values` parses the body's form data)."""
    if request.blueprint == "api":
        return
    if "\x00" in request.path:
        abort(400, "The URL contains a NUL character.")
    for name, value in request.values.items(multi=True):
        if "\x00" in name or "\x00" in value:
            abort(400, f"The field '{name.replace(chr(0), '')}' contains a NUL character.")


def _configure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if str(app.config.get("SQLALCHEMY_DATABASE_URI") or "").startswith(("postgres", "postgresql")):
        # The production engine, shared by processes on several hosts: a key generated per host would sign each
        # host's sessions and CSRF tokens differently, and logins would fail behind a load balancer.
        raise ConfigError("SECRET_KEY must be set when DATABASE_URL is PostgreSQL: every process and host must "
                          "sign sessions with the same key (e.g. the output of "
                          "python3 -c 'import secrets; print(secrets.token_hex(32))').")
    if app.debug or os.environ.get("FLASK_DEBUG") == "1" or app.config["APP_ENV"] == "development":
        # Development only: a key kept in the instance folder so sessions survive restarts.
        os.makedirs(app.instance_path, exist_ok=True)
        key_file = Path(app.instance_path) / "dev-secret-key"
        if not key_file.exists():
            key_file.write_text(os.urandom(32).hex())
        app.config["SECRET_KEY"] = key_file.read_text().strip()
        return
    raise ConfigError("SECRET_KEY must be set when APP_ENV=production: a long random string, e.g. the output of "
                      "python3 -c 'import secrets; print(secrets.token_hex(32))'.")


def _configure_database(app: Flask) -> None:
    url = app.config.get("SQLALCHEMY_DATABASE_URI")
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'app.db'}"
    url = normalise_database_url(url)
    settings.check_database_url(url)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.setdefault("json_serializer", json_text)
    options.setdefault("pool_recycle", settings.seconds("DATABASE_POOL_RECYCLE",
                                                        app.config.get("DATABASE_POOL_RECYCLE", 1800)))
    options.setdefault("pool_pre_ping", settings.flag("DATABASE_POOL_PRE_PING",
                                                      app.config.get("DATABASE_POOL_PRE_PING")))
    if url.startswith("sqlite"):
        options.pop("pool_recycle", None)  # a file, not a server: nothing to recycle
        options.setdefault("connect_args", {"timeout": 30})
    synchronous_commit = app.config.get("DATABASE_SYNCHRONOUS_COMMIT")
    if synchronous_commit:
        settings.synchronous_commit(synchronous_commit)  # checked on SQLite too, where it is ignored
    if synchronous_commit and url.startswith("postgresql"):
        connect_args = dict(options.get("connect_args") or {})
        connect_args["options"] = f"{connect_args.get('options', '')} -c synchronous_commit={synchronous_commit}".strip()
        options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _configure_sqlite(app: Flask) -> None:
    """WAL mode and foreign keys on every SQLite connection (SPEC §9), and a bound on the log file's size."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    wal_size_limit = int(app.config["SQLITE_WAL_SIZE_LIMIT"])

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA journal_size_limit={wal_size_limit}")
        cursor.close()


def json_value(value, indent: int | None = None) -> str:
    """A JSON value as the text of a page: a string as it is, anything else as JSON (true, null, ["a","b"]), not
    as Python writes it (True, None, ['a', 'b']). Jinja escapes it as any text; `tojson` is for <script> and
    shows < > & ' as \\u escapes."""
    if isinstance(value, str):
        return value
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, default=str)


def _register_template_helpers(app: Flask) -> None:
    from . import authz

    app.add_template_filter(json_value)

    @app.context_processor
    def inject_helpers():
        def can(action: str) -> bool:
            role = g.get("role")
            return authz.allows(role, action)

        def workspaces():
            if not current_user.is_authenticated:
                return []
            from .services.accounts import workspaces_of

            if "user_workspaces" not in g:
                g.user_workspaces = workspaces_of(current_user.id)
            return g.user_workspaces

        return {"can": can, "user_workspaces": workspaces}
