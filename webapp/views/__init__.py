"""HTML blueprints by feature, and the helpers they share."""
from __future__ import annotations

from functools import wraps

from flask import Flask, Response, abort, g, make_response, redirect, render_template, request
from flask_login import current_user, login_required

from webapp import authz
from webapp.services.workspace import agents as agent_service


def register(app: Flask) -> None:
    from webapp.views import account, agents, auth, experiments, invitations, preview, results, review, workspace

    for module in (auth, account, invitations, workspace, agents, experiments, preview, results, review):
        app.register_blueprint(module.bp)


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


def agent_view(action: str = "view"):
    """Load the agent of `agent_id` for the current user: non-member 404, too low a role 403.

    Sets g.agent, g.workspace and g.role for templates; the services check again. A route that acts on an
    experiment id passes no action: the service looks the experiment up under this agent first (404 for every role
    when it is not there) and then checks the role (403), SPEC §2.
    """
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(agent_id: int, *args, **kwargs):
            agent, role = agent_service.agent_for(current_user.id, agent_id)
            g.agent, g.workspace, g.role = agent, agent.workspace, role
            authz.require_role(role, action)  # after g is set: a 403 page keeps the workspace navigation
            return view(agent_id, *args, **kwargs)
        return wrapper
    return decorator


def page_arg() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        abort(400, "page must be a positive whole number.")
