"""Jinja helpers every template may use: `json_value`, `can(action)`, `user_workspaces()`, `is_agent_persona`,
`outcome_label`, and the `thousands`, `isolated` and `browser_summary` filters."""
from __future__ import annotations

import json
import re

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


# (pattern, name), first match wins: Edge and Opera say "Chrome" too, Chrome says "Safari", so they come first.
BROWSERS = ((r"\bEdg(?:e|A|iOS)?/", "Edge"), (r"\b(?:OPR|Opera)/", "Opera"), (r"\bFirefox/|\bFxiOS/", "Firefox"),
            (r"\bSamsungBrowser/", "Samsung Internet"), (r"\bChromium/", "Chromium"),
            (r"\b(?:Chrome|CriOS)/", "Chrome"), (r"\bVersion/[\d.]+.*\bSafari/", "Safari"), (r"\bcurl/", "curl"),
            (r"python-requests|python-urllib", "Python"))
SYSTEMS = ((r"\b(?:iPhone|iPad|iPod)\b", "iOS"), (r"\bAndroid\b", "Android"), (r"\bCrOS\b", "ChromeOS"),
           (r"\bWindows\b", "Windows"), (r"\bMac OS X\b|\bMacintosh\b", "macOS"), (r"\bLinux\b", "Linux"))


def browser_summary(user_agent: str | None) -> str:
    """A login's browser as a person reads it ("Chrome on Linux"), from its User-Agent; the page keeps the whole
    string in a title. Unknown parts are left out; nothing known at all is "Unknown browser"."""
    text = user_agent or ""
    browser = next((name for pattern, name in BROWSERS if re.search(pattern, text)), None)
    system = next((name for pattern, name in SYSTEMS if re.search(pattern, text)), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or (f"A browser on {system}" if system else ("Unknown browser" if not text else text[:40]))


def register_template_helpers(app: Flask) -> None:
    from webapp import authz
    from webapp.services.experiments import outcomes

    app.add_template_filter(json_value)
    app.add_template_filter(thousands)
    app.add_template_filter(isolated)
    app.add_template_filter(browser_summary)
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
