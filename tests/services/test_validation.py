"""Shared validators."""
from __future__ import annotations

import sys
import unicodedata

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
