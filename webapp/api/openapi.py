"""The OpenAPI 3 document of the runtime API, served at /api/v1/openapi.json (SPEC §6)."""
from __future__ import annotations

from typing import Any

from webapp.services.validation import MAX_JSON_DEPTH

NO_CONTROL_CHARS = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _opaque(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL_CHARS,
            "description": description}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Malformed JSON, or a body that is not a JSON object"),
    "401": _json(_ref("Error"), "Missing, unknown or revoked API key, or a scheme other than Bearer"),
    "404": _json(_ref("Error"), "No such agent in the key's workspace, or no such conversation"),
    "409": _json(_ref("Error"), "The conversation belongs to another visitor, or the idempotency key (message_id, "
                                "idempotency_key) was already used in it for a different message or lead"),
    "413": _json(_ref("Error"), "Request body over 64 KB"),
    "422": _json(_ref("Error"), "Validation error; `fields` names each offending field"),
    "503": {**_json(_ref("Error"), "The database cannot be reached (code `unavailable`): retry the same request"),
            "headers": {"Retry-After": {"description": "Seconds to wait: 1", "schema": {"type": "integer"}}}},
}


TIMESTAMP = {"type": "string", "format": "date-time",
             "description": "ISO-8601 with a timezone, from 2000-01-01T00:00:00Z to 24 hours after the server's "
                            "clock (else 422); default now"}


def _errors(*codes: str) -> dict[str, Any]:
    """The responses of `codes`, and 503, which any endpoint answers while the database cannot be reached."""
    return {code: ERRORS[code] for code in (*codes, "503")}


AGENT_ID = {"name": "agent_id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message", "fields"], "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "fields": {"type": "object", "additionalProperties": {"type": "string"}}},
        }},
    },
    "Experiment": {
        "type": "object", "nullable": True, "required": ["id", "name", "kind"], "additionalProperties": False,
        "description": "The conversation's experiment; name and kind are null once it has been deleted.",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string", "nullable": True},
                       "kind": {"type": "string", "enum": ["persona", "cta", "trigger"], "nullable": True}},
    },
    "Variant": {
        "type": "object", "nullable": True, "required": ["id", "key", "name"], "additionalProperties": False,
        "description": "The stamped variant; name is null once its experiment has been deleted.",
        "properties": {"id": {"type": "integer"}, "key": {"type": "string"},
                       "name": {"type": "string", "nullable": True}},
    },
    "Persona": {
        "type": "object", "required": ["name", "tone"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "tone": {"type": "string"}},
    },
    "MessageRequest": {
        "type": "object", "required": ["visitor_id", "conversation_id", "role"],
        "properties": {
            "visitor_id": _opaque("The runtime's id of the visitor"),
            "conversation_id": _opaque("The runtime's id of the conversation, unique per agent"),
            "role": {"type": "string", "enum": ["visitor", "agent"]},
            "text": {"type": "string"},
            "sent_at": TIMESTAMP,
            "message_id": _opaque("Idempotency key within the conversation: a replay (same role and text) "
                                  "answers 200 with the first response; reused for another message, 409"),
        },
    },
    "MessageResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["conversation_id", "message_id", "experiment", "variant", "persona", "system_prompt"],
        "properties": {
            "conversation_id": {"type": "string"},
            "message_id": {"type": "string", "description": "The request's message_id, or one generated"},
            "experiment": _ref("Experiment"), "variant": _ref("Variant"), "persona": _ref("Persona"),
            "system_prompt": {"type": "string"},
        },
    },
    "LeadRequest": {
        "type": "object", "required": ["visitor_id", "conversation_id"],
        "properties": {
            "visitor_id": _opaque("The visitor of the conversation"),
            "conversation_id": _opaque("An existing conversation of this visitor"),
            "fields": {"type": "object", "description": "The captured fields, free-form; objects and arrays nested "
                                                        f"at most {MAX_JSON_DEPTH} levels (this one is the first)"},
            "captured_at": TIMESTAMP,
            "idempotency_key": _opaque("Idempotency key of the lead within the conversation: a retry (same "
                                      "fields) answers 200 with the first lead; reused for other fields, 409"),
        },
    },
    "LeadResponse": {
        "type": "object", "required": ["lead_id", "variant"], "additionalProperties": False,
        "properties": {"lead_id": {"type": "integer"}, "variant": _ref("Variant")},
    },
    "PersonaResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["conversation_id", "visitor_id", "experiment", "variant", "persona", "system_prompt"],
        "properties": {
            "conversation_id": {"type": "string"}, "visitor_id": {"type": "string"},
            "experiment": _ref("Experiment"), "variant": _ref("Variant"), "persona": _ref("Persona"),
            "system_prompt": {"type": "string"},
        },
    },
    "AssignmentResponse": {
        "type": "object", "required": ["visitor_id", "assignment"], "additionalProperties": False,
        "properties": {
            "visitor_id": {"type": "string"},
            "assignment": {
                "type": "object", "nullable": True, "additionalProperties": False,
                "required": ["experiment", "variant", "assigned_at"],
                "properties": {"experiment": _ref("Experiment"), "variant": _ref("Variant"),
                               "assigned_at": {"type": "string", "format": "date-time"}},
            },
        },
    },
}


def _lookup(operation_id: str, summary: str, id_name: str, schema: str, description: str) -> dict[str, Any]:
    """A read-only GET by a runtime id in the path."""
    id_schema = _opaque(f"The runtime's {id_name.replace('_', ' ')}, percent-encoded UTF-8 (it may start with or "
                        "hold '/')")
    not_utf8 = _json(_ref("Error"), f"The {id_name} in the path is not UTF-8 (a percent-encoded byte that is not part "
                                    f"of a UTF-8 character); `fields` names it")
    return {"get": {
        "operationId": operation_id, "summary": summary,
        "parameters": [AGENT_ID, {"name": id_name, "in": "path", "required": True, "schema": id_schema}],
        "responses": {"200": _json(_ref(schema), description), "400": not_utf8, **_errors("401", "404", "422")},
    }}


def openapi_document() -> dict[str, Any]:
    """The whole document; every operation needs the bearer key."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Agent Studio runtime API", "version": "1.0.0",
                 "description": "What the chat runtime calls: assignment, persona, messages and leads."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/agents/{agent_id}/messages": {"post": {
                "operationId": "postMessage",
                "summary": "Report a message; visitor messages are assigned a variant (idempotent on message_id)",
                "parameters": [AGENT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("MessageRequest")}}},
                "responses": {"201": _json(_ref("MessageResponse"), "Recorded"),
                              "200": _json(_ref("MessageResponse"), "A replay of message_id: the first response"),
                              **_errors("400", "401", "404", "409", "413", "422")},
            }},
            "/agents/{agent_id}/leads": {"post": {
                "operationId": "postLead",
                "summary": "Report a lead captured in a conversation",
                "parameters": [AGENT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("LeadRequest")}}},
                "responses": {"201": _json(_ref("LeadResponse"), "Recorded"),
                              "200": _json(_ref("LeadResponse"), "A retry of an idempotency_key: the first lead"),
                              **_errors("400", "401", "404", "409", "413", "422")},
            }},
            "/agents/{agent_id}/conversations/{conversation_id}/persona": _lookup(
                "getConversationPersona", "The effective persona and system prompt of a conversation (read-only)",
                "conversation_id", "PersonaResponse", "The effective persona"),
            "/agents/{agent_id}/visitors/{visitor_id}/assignment": _lookup(
                "getVisitorAssignment", "The visitor's assignment in the active experiment, or null; never assigns",
                "visitor_id", "AssignmentResponse", "The assignment, or null"),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A runtime API key of the agent's workspace"}},
            "schemas": SCHEMAS,
        },
    }
