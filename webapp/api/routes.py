"""Runtime endpoints: parse the request, call one service function, serialise (SPEC §6)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from webapp.services.workspace import api_keys
from webapp.services.runtime import service as runtime
from webapp.services import validation
from webapp.api.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object: 413 over the size limit, 400 when malformed or not an object."""
    limit = current_app.config["API_MAX_BODY_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The request body is over {limit // 1024} KB.")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise RequestEntityTooLarge(f"The request body is over {limit // 1024} KB.")
    try:
        body = validation.parse_json(raw)  # a lone surrogate ("\ud800") too: no UTF-8 column stores it
    except ValueError as error:
        raise BadRequest(f"The request body is not valid JSON: {error}.") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply to read.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


@bp.before_request
def bearer_token() -> None:
    """Every endpoint but the OpenAPI document needs a Bearer API key; each checks it in its own read."""
    if request.endpoint != "api.openapi":
        g.token = api_keys.bearer_token(request.headers.get("Authorization", ""))


def body_or_401(agent_id: int) -> dict[str, Any]:
    """The JSON body; when it is unreadable, a bad key still answers 401 first."""
    try:
        return json_object()
    except HTTPException:
        runtime.authenticate(g.token, agent_id)
        raise


@bp.post("/agents/<int:agent_id>/messages")
def post_message(agent_id: int):
    result = runtime.report_message(g.token, agent_id, body_or_401(agent_id))
    # Serialised once, for the database and for the reply: a replay sends the stored bytes.
    return current_app.response_class(f"{result.text}\n", 200 if result.replayed else 201, mimetype="application/json")


@bp.post("/agents/<int:agent_id>/leads")
def post_lead(agent_id: int):
    result = runtime.report_lead(g.token, agent_id, body_or_401(agent_id))
    return jsonify(result.body), 200 if result.replayed else 201


@bp.post("/agents/<int:agent_id>/events")
def post_event(agent_id: int):
    result = runtime.report_event(g.token, agent_id, body_or_401(agent_id))
    return jsonify(result.body), 200 if result.replayed else 201


@bp.get("/agents/<int:agent_id>/conversations/<runtime_id:conversation_id>/persona", merge_slashes=False)
def conversation_persona(agent_id: int, conversation_id: str):
    return jsonify(runtime.conversation_persona(g.token, agent_id, conversation_id))


@bp.post("/agents/<int:agent_id>/conversations/<runtime_id:conversation_id>/feedback", merge_slashes=False)
def post_feedback(agent_id: int, conversation_id: str):
    result = runtime.report_feedback(g.token, agent_id, conversation_id, body_or_401(agent_id))
    return jsonify(result.body), 201 if result.created else 200


@bp.get("/agents/<int:agent_id>/visitors/<runtime_id:visitor_id>/assignment", merge_slashes=False)
def visitor_assignment(agent_id: int, visitor_id: str):
    return jsonify(runtime.visitor_assignment(g.token, agent_id, visitor_id))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
