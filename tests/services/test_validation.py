"""Shared validators."""
from __future__ import annotations

import sys
import unicodedata

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
