"""Small shared validators used by several services."""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

GOAL_NAME_RE = re.compile(r"[a-z0-9_.-]{1,60}", re.ASCII)  # a goal event's name (SPEC §13), e.g. booked_demo
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def text(value, field: str, errors: dict, *, min_len: int = 0, max_len: int, label: str | None = None,
         multiline: bool = False) -> str:
    """Trimmed string of bounded length; records an error on `field` otherwise.

    No control character (Unicode category Cc), no bidirectional control (embedding, override, isolate, or the
    invisible ALM, LRM and RLM marks) and no line or paragraph separator (U+2028, U+2029): they show as boxes,
    reverse the text around them or break the line, in the page, the system prompt and the exports. A `multiline`
    field (a hypothesis, an agent's instructions) keeps tabs and line breaks (\n, \r\n)."""
    label = label or field.replace("_", " ").capitalize()
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = f"{label} must be text."
        return ""
    value = value.strip()
    refused = (MULTILINE_REFUSED_RE if multiline else SINGLE_LINE_REFUSED_RE).search(value)
    if refused:
        errors[field] = _refused_character(label, refused.group()[0], multiline)
    elif len(value) < min_len:
        errors[field] = f"{label} is required." if min_len == 1 else f"{label} needs at least {min_len} characters."
    elif len(value) > max_len:
        errors[field] = f"{label} must be at most {max_len} characters (got {len(value)})."
    return value


# Unicode's control characters (general category Cc) are exactly C0, DEL and C1; a regex scans in C.
CONTROL_CHARS_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def has_control_chars(value: str) -> bool:
    return CONTROL_CHARS_RE.search(value) is not None


# The bidirectional embedding and override controls (LRE, RLE, PDF, LRO, RLO), the isolates (LRI, RLI, FSI, PDI) and
# the implicit marks (ALM, LRM, RLM): invisible, yet they move the neutral characters around them.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# The line and paragraph separators break a line as \n does (in the page, the exports, a JavaScript string), though
# outside category Cc; multi-line text takes \n and \r\n, what a browser's textarea sends.
SEPARATORS = "\u2028\u2029"
# Surrogates stand alone in a str only by mistake: a "\ud800" JSON escape, or a byte that is not UTF-8 in a command's
# argument (Python decodes it with surrogateescape). No UTF-8 column stores one.
SURROGATES = "\ud800-\udfff"
LONE_SURROGATE_RE = re.compile(f"[{SURROGATES}]")
# How surrogateescape decodes a byte that is not UTF-8 (0x80–0xFF): U+DC80–U+DCFF.
UNDECODABLE_BYTE_RE = re.compile("[\udc80-\udcff]")
SINGLE_LINE_REFUSED_RE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}{SEPARATORS}{SURROGATES}]")
# Multi-line text keeps tab, line feed and a carriage return that begins a CRLF (what a browser's textarea sends).
MULTILINE_REFUSED_RE = re.compile(
    f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{BIDI_CONTROLS}{SEPARATORS}{SURROGATES}]|\\r(?!\\n)")


def not_unicode(label: str, char: str) -> str:
    """The error of text holding a lone surrogate `char`."""
    return (f"{label} must be valid Unicode text: it holds a lone surrogate (found U+{ord(char):04X}), such as a byte "
            f"that is not UTF-8.")


def _refused_character(label: str, char: str, multiline: bool) -> str:
    found = f"found U+{ord(char):04X}"
    if LONE_SURROGATE_RE.match(char):
        return not_unicode(label, char)
    if char in SEPARATORS:
        if multiline:
            return f"{label} must not contain line or paragraph separators: use ordinary line breaks ({found})."
        return f"{label} must not contain tabs or line breaks: it is a single line ({found})."
    if not has_control_chars(char):
        return f"{label} must not contain bidirectional-text controls, which reorder the text around them ({found})."
    if multiline:
        return f"{label} must not contain control characters other than tabs and line breaks ({found})."
    if char in "\t\n\r":
        return f"{label} must not contain tabs or line breaks: it is a single line ({found})."
    return f"{label} must not contain control characters ({found})."


def opaque_id(value, field: str, errors: dict) -> str:
    """Runtime ids (SPEC §1): 1–200 characters, any Unicode, no control characters."""
    if not isinstance(value, str):
        errors[field] = f"{field} is required and must be a string." if value is None else f"{field} must be a string."
        return ""
    if not 1 <= len(value) <= 200:
        errors[field] = f"{field} must be 1–200 characters (got {len(value)})."
    elif has_control_chars(value):
        errors[field] = f"{field} must not contain control characters."
    return value


def runtime_text(value, field: str, errors: dict, max_len: int | None = None) -> str:
    """The runtime's own text (a message, a comment): stored as sent, NUL aside (PostgreSQL text cannot hold it);
    absent or null is ""."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[field] = f"{field} must be a string."
    elif max_len is not None and len(value) > max_len:
        errors[field] = f"{field} must be at most {max_len:,} characters (got {len(value):,})."
    elif "\x00" in value:
        errors[field] = f"{field} must not contain NUL characters."
    return value


def optional_opaque_id(data: dict, field: str, errors: dict) -> str | None:
    """An optional runtime id of a JSON body (an idempotency key): None when absent."""
    value = data.get(field)
    return None if value is None else opaque_id(value, field, errors)


EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=timezone.utc)
# RFC 3339's date-time (section 5.6) without its leap second: a "T" (or "t"), seconds, an optional fraction, and "Z"
# or a ±hh:mm offset. The fields' ranges and the calendar are checked by fromisoformat.
RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII)
CLOCK_SKEW = timedelta(hours=24)  # how far a runtime's clock may run ahead of the server's


def timestamp(value, field: str, errors: dict, now: datetime | None = None) -> datetime | None:
    """ISO-8601 with a timezone, from 2000-01-01T00:00:00Z to 24 hours after `now` (the server's clock), in UTC;
    None for 'now'. The bounds keep a typo (year 9999 or 0001) out of session lengths and charts."""
    if value is None:
        return None
    if not isinstance(value, str):
        errors[field] = f"{field} must be an ISO-8601 string with a timezone."
        return None
    if not RFC3339_RE.fullmatch(value):  # what OpenAPI's date-time means; fromisoformat alone takes "2026-01-01 10:00"
        errors[field] = (f"{field} is not a valid ISO-8601 timestamp: use the RFC 3339 form "
                         "YYYY-MM-DDThh:mm:ss[.fraction] with Z or an offset ±hh:mm (e.g. 2026-01-31T12:00:00Z).")
        return None
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
    except ValueError:
        errors[field] = f"{field} is not a valid ISO-8601 timestamp."
        return None
    if parsed.tzinfo is None:
        errors[field] = f"{field} must include a timezone (e.g. 2026-01-31T12:00:00Z)."
        return None
    latest = (now or datetime.now(timezone.utc)) + CLOCK_SKEW
    if not EARLIEST_TIMESTAMP <= parsed <= latest:  # aware datetimes compare across offsets without converting
        errors[field] = (f"{field} must be from 2000-01-01T00:00:00Z to 24 hours after the server's current time "
                         f"({latest:%Y-%m-%dT%H:%M:%SZ}).")
        return None
    return parsed.astimezone(timezone.utc)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:24]} is out of range (JSON numbers must be finite)")
    return value


MAX_INT_DIGITS = 4_300  # int() refuses longer digit strings (sys.int_info.default_max_str_digits)


def _whole_number(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise ValueError(f"number {text[:20]}… has more than {MAX_INT_DIGITS:,} digits")
    return int(text)


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in a parsed JSON value's strings and keys, or None (iterative: any depth)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            match = LONE_SURROGATE_RE.search(node)
            if match:
                return match.group()
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def parse_json(text: str | bytes) -> Any:
    """JSON as the standard has it; ValueError, its message a plain reason (no Python names), when it is not.

    NaN, Infinity and numbers beyond a double's range (1e999) raise it like malformed JSON, so that what is stored
    is served as valid JSON again; so does a lone surrogate ("\\ud800", or its UTF-8 bytes, which json decodes with
    surrogatepass), which no UTF-8 column can store. RecursionError beyond the parser's depth."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_whole_number)
    except json.JSONDecodeError as error:  # its str() ends in "(char 0)": the line and column say it plainly
        raise ValueError(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except UnicodeDecodeError as error:  # bytes that are not the UTF-8 (or UTF-16/32) they start as
        raise ValueError(f"it is not {error.encoding.upper()} text (byte {error.object[error.start]:#04x} at position "
                         f"{error.start})") from None
    # Only a \u escape or a non-ASCII character (UTF-16/32 bytes hold NULs) can make one: the usual body skips this.
    if isinstance(text, bytes):
        suspect = b"\\u" in text or b"\x00" in text or not text.isascii()
    else:
        suspect = "\\u" in text or not text.isascii()
    if suspect:
        surrogate = _lone_surrogate(value)
        if surrogate is not None:
            raise ValueError(f"it contains an invalid Unicode escape (a lone surrogate, \\u{ord(surrogate):04x})")
    return value


MAX_JSON_DEPTH = 20  # objects and arrays inside one another in a stored JSON value (lead fields, variant configs)


def too_deep(label: str) -> str:
    """The error of a JSON value nested beyond MAX_JSON_DEPTH."""
    return f"{label} is nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and arrays."


def json_value(value: Any, field: str, errors: dict, *, label: str, refuse_nul: bool = False) -> None:
    """Record an error on `field` when a parsed JSON value nests objects and arrays more than MAX_JSON_DEPTH
    levels deep (the value itself is level 1) or, with `refuse_nul`, holds NUL in a string or key.

    Iterative: it never recurses, however deep the value, so it runs before anything that does (a recursive
    walk, json.dumps when the value is stored).
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
            if refuse_nul:
                stack.extend((key, depth) for key in node)
        elif isinstance(node, list):
            children = node
        else:
            if refuse_nul and isinstance(node, str) and "\x00" in node:
                errors[field] = f"{label} must not contain NUL characters."
                return
            continue
        if depth > MAX_JSON_DEPTH:
            errors[field] = too_deep(label)
            return
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)) or (refuse_nul and isinstance(child, str)))


def email(value, field: str, errors: dict) -> str:
    value = text(value, field, errors, min_len=1, max_len=254, label="Email").lower()
    if field not in errors and not EMAIL_RE.match(value):
        errors[field] = "Enter a valid email address."
    return value


def slug(value, field: str, errors: dict, label: str = "Slug") -> str:
    """1–64 lower-case letters, digits and inner dashes (upper case is folded)."""
    value = text(value, field, errors, min_len=1, max_len=64, label=label).lower()
    if field not in errors and not SLUG_RE.match(value):
        errors[field] = f"{label} may contain only lower-case letters, digits and dashes."
    return value


def goal_name(value, field: str, errors: dict) -> str:
    """A goal event's name (SPEC §13): 1–60 characters of a–z, 0–9, "_", "." and "-" (no folding: the name is the
    metric's key, and "Booked_Demo" beside "booked_demo" would split one goal in two)."""
    if not isinstance(value, str):
        errors[field] = f"{field} is required and must be a string." if value is None else f"{field} must be a string."
        return ""
    if not GOAL_NAME_RE.fullmatch(value):
        errors[field] = (f"{field} must be 1–60 characters of a–z, 0–9, '_', '.' and '-' (e.g. booked_demo); "
                         f"got {len(value)} character{'' if len(value) == 1 else 's'}"
                         f"{'' if not value or len(value) > 60 else ' with others'}.")
    return value
