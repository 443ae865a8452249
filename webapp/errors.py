"""One error handler that answers HTML for pages and the SPEC's JSON shape under /api/v1."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .services.errors import DomainError

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error",
         500: "internal_error"}


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, fields: dict | None = None, code: str | None = None):
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "fields": fields or {}}}
    return jsonify(body), status


def _page(status: int, title: str, message: str):
    template = "errors/fragment.html" if request.headers.get("HX-Request") else "errors/page.html"
    return render_template(template, status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        db.session.rollback()
        if wants_json():
            return json_error(error.status, error.message, error.fields, error.code)
        titles = {403: "Not allowed", 404: "Not found", 409: "Conflict", 422: "Invalid input", 401: "Log in"}
        return _page(error.status, titles.get(error.status, "Error"), error.message)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _page(400, "Session expired", f"The form's security token is missing or invalid ({error.description}). "
                                              "Reload the page and try again.")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        if wants_json():
            return json_error(status, error.description or error.name)
        return _page(status, error.name, error.description or "")

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("Unhandled error")
        if wants_json():
            return json_error(500, "Internal server error.")
        return _page(500, "Something went wrong", InternalServerError.description)
