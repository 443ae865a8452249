"""HTML blueprints by feature (registered by create_app), and the helpers they share."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Response, abort, g, make_response, redirect, render_template, request
from flask_login import current_user, login_required

from webapp import authz
from webapp.models import Role
from webapp.services.workspace import accounts, agents as agent_service


def is_htmx_request() -> bool:
    """True for an HTMX request that handles response headers (a history restore swaps whatever page it gets)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def is_htmx_fragment_request() -> bool:
    """True for an HTMX request that wants a fragment (not boosted, not a history restore)."""
    return is_htmx_request() and request.headers.get("HX-Boosted") != "true"


def hx_redirect(url: str, status: int = 200) -> Response:
    """A redirect that HTMX follows with a full page load (HX-Redirect, any status) and a browser as usual (302).

    Never a 302 to HTMX: its XHR would follow it and swap the page it lands on into the component."""
    if is_htmx_request():
        response = make_response("", status)
        response.headers["HX-Redirect"] = url
    else:
        response = redirect(url)
    response.vary.add("HX-Request")
    return response


def render(template_name: str, fragment: str | None = None, status: int = 200, **context):
    """Render the full page, or only `fragment` for an HTMX request; always Vary on HX-Request."""
    template = fragment if fragment and is_htmx_fragment_request() else template_name
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def member_view(path_arg: str, load: Callable[[int, object], Role], action: str = "view"):
    """The one permission decorator: `load(user_id, view_args[path_arg])` finds what the URL names for the current
    user (404 for a non-member: ids never leak), sets g for templates and returns the role; too low a role for
    `action` is a 403 (after g is set: the 403 page keeps the workspace navigation). The services check again.

    A route that acts on an id inside it (an experiment, a member, an API key) passes no action: its service looks
    the id up first (404 for every role when it is not there) and then checks the role (403), SPEC §2.
    """
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(**view_args):
            authz.require_role(load(current_user.id, view_args[path_arg]), action)
            return view(**view_args)
        return wrapper
    return decorator


def _load_agent(user_id: int, agent_id: object) -> Role:
    agent, role = agent_service.agent_for(user_id, agent_id)
    g.agent, g.workspace, g.role = agent, agent.workspace, role
    return role


def _load_workspace(user_id: int, slug: object) -> Role:
    g.workspace, g.role = accounts.workspace_for(user_id, slug)
    return g.role


def agent_view(action: str = "view"):
    """Pages under /agents/<agent_id>: g.agent, g.workspace and g.role (see member_view)."""
    return member_view("agent_id", _load_agent, action)


def workspace_view(action: str = "view"):
    """Pages under /w/<slug>: g.workspace and g.role (see member_view)."""
    return member_view("slug", _load_workspace, action)


def page_arg() -> int:
    """`?page=`: absent is 1; a positive whole number (digits only) is that page, one past the last showing the last
    (services' paginate); anything else — 0, -1, abc, 1.5, blank — is the same 400 naming `page`."""
    raw = request.args.get("page")
    if raw is None:
        return 1
    text = raw.strip()
    number = text.lstrip("0")
    if not (text.isascii() and text.isdigit() and number):
        abort(400, "page must be a positive whole number.")
    return int(number) if len(number) <= 18 else 10**18  # past the last page either way
