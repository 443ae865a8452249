"""Jinja helpers every template may use: `json_value`, `can(action)`, `user_workspaces()`, `is_agent_persona`,
`outcome_label`, and the `thousands` and `isolated` filters."""
from __future__ import annotations

import json

from flask import Flask, g
from flask_login import current_user


def json_value(value, indent: int | None = None) -> str:
    """A JSON value as the text of a page: a string as it is, anything else as JSON (true, null, ["a","b"]), not
    as Python writes it (True, None, ['a', 'b']). Jinja escapes it as any text; `tojson` is for <script> and
    shows < > & ' as \\u escapes."""
    if isinstance(value, str):
        return value
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=separators, default=str)


def thousands(value) -> str:
    """A count with thousands separators, as every count on a page is written: 12,345."""
    return "{:,}".format(value)


def isolated(value) -> str:
    """A runtime id where <bdi> cannot go (a page's <title>): between Unicode's FIRST STRONG ISOLATE and POP
    DIRECTIONAL ISOLATE, so an id in a right-to-left script, or with bidi controls of its own, cannot reorder the
    words around it."""
    return f"\u2068{value}\u2069"


def register_template_helpers(app: Flask) -> None:
    from webapp import authz
    from webapp.services.experiments import outcomes

    app.add_template_filter(json_value)
    app.add_template_filter(thousands)
    app.add_template_filter(isolated)
    app.add_template_global(outcomes.is_agent_persona, "is_agent_persona")
    app.add_template_global(outcomes.label, "outcome_label")

    @app.context_processor
    def inject_helpers():
        def can(action: str) -> bool:
            role = g.get("role")
            return authz.allows(role, action)

        def workspaces():
            if not current_user.is_authenticated:
                return []
            from webapp.services.workspace.accounts import workspaces_of

            if "user_workspaces" not in g:
                g.user_workspaces = workspaces_of(current_user.id)
            return g.user_workspaces

        return {"can": can, "user_workspaces": workspaces}
