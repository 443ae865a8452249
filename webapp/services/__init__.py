"""The service layer: every rule of SPEC.md, with no Flask request in sight.

Functions take ids and primitives (plus the acting user's id), check roles,
raise domain errors from `errors`, and commit once.
"""
