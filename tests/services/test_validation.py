"""Shared validators."""
from __future__ import annotations

import sys
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest

from webapp.services import validation


def test_control_characters_are_exactly_unicode_category_cc():
    """The regex that scans runtime ids matches every code point of category Cc and no other."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert validation.has_control_chars(char) == (unicodedata.category(char) == "Cc"), hex(code)


def test_opaque_ids_refuse_control_characters_anywhere():
    for value in ("\x00", "a\x1fb", "tail\x7f", "c1\x85", "\u009f"):
        errors: dict = {}
        validation.opaque_id(value, "visitor_id", errors)
        assert errors == {"visitor_id": "visitor_id must not contain control characters."}
    for value in ("visitor-1", "émoji 🎉", "a b", "\u200b", "x" * 200):
        errors = {}
        assert validation.opaque_id(value, "visitor_id", errors) == value and errors == {}


def nested(depth: int, inner=None):
    """`depth` lists inside one another (built without recursion), the innermost holding `inner` if given."""
    value = [] if inner is None else [inner]
    for _ in range(depth - 1):
        value = [value]
    return value


def test_json_nesting_is_bounded_at_max_json_depth_without_recursing():
    for value in ({"a": nested(validation.MAX_JSON_DEPTH - 1)}, nested(validation.MAX_JSON_DEPTH - 1, {}),
                  {"a": 1, "b": [{"c": "d"}], "e": None}):
        errors: dict = {}
        validation.json_value(value, "fields", errors, label="fields")
        assert errors == {}
    # One level too many, and far beyond what a recursive walk (or json.dumps) survives.
    for value in ({"a": nested(validation.MAX_JSON_DEPTH)}, nested(validation.MAX_JSON_DEPTH + 1),
                  {"a": nested(400)}, nested(100_000), [{"x": 1}, {"y": nested(50, {"z": "deep"})}]):
        errors = {}
        validation.json_value(value, "fields", errors, label="fields")
        assert errors == {"fields": "fields is nested too deeply: at most 20 levels of objects and arrays."}


def test_json_value_refuses_nul_in_strings_and_keys_only_when_asked():
    for value in ({"a": "x\x00"}, {"a\x00": 1}, {"a": [["\x00"]]}, ["ok", {"b": {"c\x00d": None}}]):
        errors: dict = {}
        validation.json_value(value, "fields", errors, label="fields", refuse_nul=True)
        assert errors == {"fields": "fields must not contain NUL characters."}
        errors = {}
        validation.json_value(value, "config", errors, label="Config")
        assert errors == {}


def test_parse_json_refuses_what_json_cannot_carry_back():
    """NaN, ±Infinity and numbers beyond a double's range would be stored as `Infinity` (invalid JSON)."""
    for text in ('{"a": NaN}', '{"a": Infinity}', '[-Infinity]', '{"a": 1e999}', '{"a": -1e400}', '[1.5, [2e308]]'):
        with pytest.raises(ValueError):
            validation.parse_json(text)
    assert validation.parse_json(b'{"max": 1.7976931348623157e308, "tiny": 1e-400, "n": -0.5}') == {
        "max": 1.7976931348623157e308, "tiny": 0.0, "n": -0.5}


NOW = datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)  # so the latest allowed is 2026-06-16T12:00:00Z


@pytest.mark.parametrize("value,expected", [
    ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=timezone.utc)),
    ("2000-01-01T01:00:00+01:00", datetime(2000, 1, 1, tzinfo=timezone.utc)),
    ("1999-12-31T19:00:00-05:00", datetime(2000, 1, 1, tzinfo=timezone.utc)),
    ("2026-06-16T12:00:00Z", NOW + timedelta(hours=24)),
    ("2026-06-16T11:59:59.999999+00:00", NOW + timedelta(hours=24, microseconds=-1)),
    ("2026-06-16T14:00:00+02:00", NOW + timedelta(hours=24)),
    ("2026-06-16T06:30:00-05:30", NOW + timedelta(hours=24)),
])
def test_timestamps_just_inside_the_bounds_are_taken_in_utc(value, expected):
    errors: dict = {}
    parsed = validation.timestamp(value, "sent_at", errors, now=NOW)
    assert errors == {} and parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [
    "1999-12-31T23:59:59.999999Z", "2000-01-01T00:59:59+01:00", "1999-12-31T18:59:59-05:00",
    "2026-06-16T12:00:00.000001Z", "2026-06-16T14:00:01+02:00", "2026-06-16T07:00:01-05:00",
    "9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
])
def test_timestamps_just_outside_the_bounds_name_the_field_and_the_range(value):
    errors: dict = {}
    assert validation.timestamp(value, "captured_at", errors, now=NOW) is None
    assert errors == {"captured_at": "captured_at must be from 2000-01-01T00:00:00Z to 24 hours after the server's "
                                     "current time (2026-06-16T12:00:00Z)."}


@pytest.mark.parametrize("text", [
    '{"a": "\\ud800"}', '{"a": "x\\udfffy"}', '{"\\udc00": 1}', '[["\\ud83d"]]', '{"a": "\\ude00\\ud83d"}',
    b'{"a": "\\ud800"}', b'{"a": "\xed\xa0\x80"}', '{"a": "\\ud800"}'.encode("utf-16-le"),
])
def test_parse_json_refuses_a_lone_surrogate_in_strings_and_keys(text):
    """Such a string parses but cannot be stored as UTF-8 (UnicodeEncodeError at the database, a 500)."""
    with pytest.raises(ValueError, match=r"invalid Unicode escape \(a lone surrogate, \\ud[89a-f][0-9a-f]{2}\)"):
        validation.parse_json(text)


def test_parse_json_keeps_surrogate_pairs_and_other_escapes():
    assert validation.parse_json('{"e": "\\ud83d\\ude00", "\\u00e9": "\\\\ud800"}') == {"e": "😀", "é": "\\ud800"}
    assert validation.parse_json('{"e": "\\ud83d\\ude00"}'.encode("utf-16")) == {"e": "😀"}


# The embedding, override and isolate controls, and the invisible marks (ALM, LRM, RLM) that reorder neutral
# characters around them.
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x061C, 0x200E, 0x200F)]
SEPARATORS = ["\u2028", "\u2029"]  # line and paragraph separators: line breaks outside Cc


def test_single_line_text_refuses_every_control_character_bidi_control_and_separator_inside_it():
    """They render as boxes, reverse the text around them or break the line, in the page, the system prompt and the
    exports."""
    cc = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]
    for char in cc + BIDI_CONTROLS + SEPARATORS:
        errors: dict = {}
        validation.text(f"Ar{char}ia", "persona_name", errors, max_len=60, label="Persona name")
        assert f"U+{ord(char):04X}" in errors.get("persona_name", ""), hex(ord(char))
        assert errors["persona_name"].startswith("Persona name must not contain ")


@pytest.mark.parametrize("char,message", [
    ("\u200e", "Name must not contain bidirectional-text controls, which reorder the text around them (found U+200E)."),
    ("\u200f", "Name must not contain bidirectional-text controls, which reorder the text around them (found U+200F)."),
    ("\u061c", "Name must not contain bidirectional-text controls, which reorder the text around them (found U+061C)."),
    ("\u2028", "Name must not contain tabs or line breaks: it is a single line (found U+2028)."),
    ("\u2029", "Name must not contain tabs or line breaks: it is a single line (found U+2029)."),
])
def test_bidi_marks_and_unicode_line_separators_are_refused_with_a_clear_message(char, message):
    errors: dict = {}
    validation.text(f"S{char}am", "name", errors, max_len=60)
    assert errors == {"name": message}
    # At either end a separator is trimmed like a line feed; a mark is no blank, and is refused there too.
    for value in (f"Sam{char}", f"{char}Sam"):
        errors = {}
        kept = validation.text(value, "name", errors, max_len=60)
        assert (kept, errors) == (("Sam", {}) if char in SEPARATORS else (value, {"name": message})), repr(value)


def test_multi_line_text_keeps_tabs_and_line_breaks_but_refuses_other_controls():
    for value in ("Be brief.\nBe kind.", "Steps:\r\n\t1. greet\r\n\t2. help", "a\n\nb"):
        errors: dict = {}
        assert validation.text(value, "instructions", errors, max_len=100, multiline=True) == value and errors == {}
    for value in ("a\rb", "a\x0bb", "a\x0cb", "bell\x07", "esc\x1b[31m", "nel\x85x", "del\x7fx", "r\u202eversed",
                  "i\u2067solate\u2069", "r\u200flm", "a\u061clm", "line\u2028sep", "para\u2029sep"):
        errors = {}
        validation.text(value, "instructions", errors, max_len=100, label="Instructions", multiline=True)
        assert errors.get("instructions", "").startswith("Instructions must not contain "), repr(value)


def test_text_without_controls_is_kept_and_blanks_around_it_are_trimmed():
    # Letters of any script, emoji (a ZWJ sequence too) and the joiners scripts need (ZWNJ in Persian) are text.
    for value, kept in ((" Aria ", "Aria"), ("\tAria\n", "Aria"), ("Zoë 🎉 שלום", "Zoë 🎉 שלום"),
                        ("a\u200bb", "a\u200bb"), ("مساعد 👩\u200d💻", "مساعد 👩\u200d💻"),
                        ("می\u200cخواهم", "می\u200cخواهم")):
        errors: dict = {}
        assert validation.text(value, "name", errors, max_len=60) == kept and errors == {}


def test_text_refuses_a_lone_surrogate_which_no_database_stores():
    for multiline in (False, True):
        errors: dict = {}
        validation.text("Bot\udcff", "name", errors, max_len=60, multiline=multiline)
        assert errors == {"name": "Name must be valid Unicode text: it holds a lone surrogate (found U+DCFF), such as "
                                  "a byte that is not UTF-8."}
