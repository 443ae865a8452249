"""One error handler that answers HTML for pages and the SPEC's JSON shape under /api/v1."""
from __future__ import annotations

import re
import sqlite3
from contextlib import suppress

import psycopg
import sqlalchemy as sa
from flask import Flask, g, jsonify, make_response, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from webapp import database
from webapp.extensions import db, login_manager
from webapp.models import MAX_DB_ID
from webapp.services.workspace import accounts, agents
from webapp.services.errors import DomainError
from webapp.views import is_htmx_fragment_request, is_htmx_request
from webapp.views.auth import to_login

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
         429: "too_many_requests", 500: "internal_error", 503: "unavailable"}
# A page's title by status, whoever raised it (a view's abort, the service layer): the reason phrase in sentence case
# ("Bad request", "Not found"), but these.
TITLES = {401: "Log in", 403: "Not allowed", 422: "Invalid input", 500: "Something went wrong",
          503: "Temporarily unavailable"}
UNAVAILABLE = "The database cannot be reached right now. Try again in a moment."
WORKSPACE_URL = re.compile(r"^/(?:w/(?P<slug>[^/]+)|agents/(?P<agent_id>\d{1,12}))(?:/|$)")


def answer_format() -> str:
    """How an error answers: "json" under /api/ and for a JSON export (`….json`: the SPEC's error shape), "text" for
    a CSV export (`….csv`: a plain-text line), else "html" (the error page, or its HTMX fragment)."""
    if request.path.startswith("/api/") or request.path.endswith(".json"):
        return "json"
    return "text" if request.path.endswith(".csv") else "html"


def json_error(status: int, message: str, fields: dict | None = None, code: str | None = None):
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "fields": fields or {}}}
    return jsonify(body), status


def error_answer(status: int, message: str, fields: dict | None = None, code: str | None = None):
    """The error in the request's format (answer_format)."""
    kind = answer_format()
    if kind == "json":
        return json_error(status, message, fields, code)
    if kind == "text":
        return make_response(message + "\n", status, {"Content-Type": "text/plain; charset=utf-8"})
    return error_page(status, message)


def error_page(status: int, message: str, title: str | None = None):
    """The error page (an HTMX request: its fragment) titled by its status unless `title` says more."""
    title = title or TITLES.get(status) or HTTP_STATUS_CODES.get(status, "Error").capitalize()
    if is_htmx_fragment_request():  # a history restore or a boosted request swaps in a whole page
        template = "errors/fragment.html"
    else:
        template = "errors/page.html"
        if status in (403, 404):
            _workspace_of_url()
    return render_template(template, status=status, title=title, message=message), status


def _workspace_of_url() -> None:
    """Set g.workspace for the page's navigation when no view loaded it (an unknown page under a workspace's or an
    agent's URL) and the user is a member; for anyone else the lookup is a 404 and the page names no workspace."""
    if "workspace" in g or not current_user.is_authenticated:
        return
    match = WORKSPACE_URL.match(request.path)
    if match is None:
        return
    try:
        if match["slug"]:
            g.workspace, g.role = accounts.workspace_for(current_user.id, match["slug"])
        elif int(match["agent_id"]) <= MAX_DB_ID:
            agent, g.role = agents.agent_for(current_user.id, int(match["agent_id"]))
            g.workspace = agent.workspace
    except DomainError:
        pass


def database_unavailable():
    """503 with Retry-After: 1, never a 500, when the database cannot be reached (SPEC §14).

    The page renders as for a visitor: the user (loaded, or still to load) would need the database."""
    with suppress(Exception):  # the connection is gone: SQLAlchemy invalidates it while rolling back
        db.session.rollback()
    g._login_user = login_manager.anonymous_user()  # Flask-Login's user of this request
    response = make_response(error_answer(503, UNAVAILABLE))
    response.headers["Retry-After"] = "1"
    return response


def register(app: Flask) -> None:
    def database_error(error: Exception):
        """An error of the database or its driver: a 503 if the database cannot be reached, else unexpected."""
        if database.unreachable(error):
            app.logger.warning("Database unavailable: %s", database.describe(error))
            return database_unavailable()
        return unexpected(error)

    for error_class in (sa.exc.SQLAlchemyError, psycopg.Error, sqlite3.Error):
        app.register_error_handler(error_class, database_error)

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        db.session.rollback()
        return error_answer(error.status, error.message, error.fields, error.code)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        if is_htmx_request() and not current_user.is_authenticated:
            # The session ended (cookie gone or expired): the component cannot be fixed by a reload of itself.
            return to_login("Your session has expired: log in again.", 400)
        return error_page(400, f"The form's security token is missing or invalid ({error.description}). "
                               "Reload the page and try again.", title="Session expired")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        original = getattr(error, "original_exception", None)  # an error handler's own error (Flask wraps it)
        if isinstance(error, InternalServerError) and database.unreachable(original):
            app.logger.warning("Database unavailable: %s", database.describe(original))
            return database_unavailable()
        status = error.code or 500
        # The page says its title when there is no description; a JSON or text answer says the name instead.
        message = error.description or (error.name if answer_format() != "html" else "")
        body = make_response(error_answer(status, message))
        # A 405 names the methods the resource takes (RFC 9110 §15.5.6), as werkzeug's own answer does.
        allow = dict(error.get_headers()).get("Allow")
        if allow:
            body.headers["Allow"] = allow
        return body

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error")
        return error_answer(500, "Internal server error." if answer_format() != "html"
                            else InternalServerError.description)
