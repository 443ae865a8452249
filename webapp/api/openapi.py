"""The OpenAPI 3 document of the runtime API, served at /api/v1/openapi.json (SPEC §6)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from webapp.services.validation import MAX_JSON_DEPTH

NO_CONTROL_CHARS = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
NO_NUL = "^[^\\u0000]*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _opaque(description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL_CHARS,
            "description": description}


ABSENT_IF_NULL = "null is the same as absent"


def _optional(schema: dict[str, Any], absent: str, description: str | None = None) -> dict[str, Any]:
    """An optional request field that the server also takes as null (many clients serialise None so): `schema` with
    null added, described as `description` (else the schema's own), then what `absent` means and that null is the
    same. A $ref'd schema is wrapped in anyOf; the others get "null" in their type (a string's pattern and lengths
    apply to strings only)."""
    description = description or schema.get("description")
    said = f"{absent[0].upper()}{absent[1:]}; {ABSENT_IF_NULL}."
    said = f"{description.rstrip('.')}. {said}" if description else said
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}], "description": said}
    return {**schema, "type": [schema["type"], "null"], "description": said}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Malformed JSON, or a body that is not a JSON object"),
    "401": _json(_ref("Error"), "Missing, unknown or revoked API key, or a scheme other than Bearer"),
    "404": _json(_ref("Error"), "No such agent in the key's workspace, or no such conversation"),
    "409": _json(_ref("Error"), "The conversation belongs to another visitor, or the idempotency key (message_id, "
                                "idempotency_key, event_id) was already used in it for a different message, lead "
                                "or event"),
    "413": _json(_ref("Error"), "Request body over 64 KB"),
    "422": _json(_ref("Error"), "Validation error; `fields` names each offending field"),
    "503": {**_json(_ref("Error"), "The database cannot be reached (code `unavailable`): retry the same request"),
            "headers": {"Retry-After": {"description": "Seconds to wait: 1", "schema": {"type": "integer"}}}},
}


TIMESTAMP = _ref("Timestamp")
_TIME = r"[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
_HOURS = r"([01]\d|2[0-3]):[0-5]\d"
_ANY_OFFSET = rf"([Zz]|[+-]{_HOURS})"
_AHEAD_OF_UTC = rf"([Zz]|[+-]00:00|\+{_HOURS})"  # local time at or ahead of UTC: the instant is no later than it reads
_BEHIND_UTC = rf"([Zz]|[+-]00:00|-{_HOURS})"  # …at or behind: no earlier than it reads


def _digits_between(low: str, high: str) -> str:
    """A regular expression for the strings of `low`'s shape (digits, and '-' where it has one) from `low` to `high`,
    both included; fixed-width, so string order is number (and calendar) order."""
    if low == high:
        return low
    anything = "".join("-" if c == "-" else r"\d" for c in low)
    if low == _bottom(low) and high == _top(low):
        return anything
    k = next(i for i, (a, b) in enumerate(zip(low, high)) if a != b)
    head, lo, hi, rest_lo, rest_hi = low[:k], int(low[k]), int(high[k]), low[k + 1:], high[k + 1:]
    options = [f"{lo}{_digits_between(rest_lo, _top(rest_lo))}" if rest_lo else str(lo)]
    if hi - lo > 1:
        options.append(f"[{lo + 1}-{hi - 1}]{_digits_between(_bottom(rest_lo), _top(rest_lo))}")
    options.append(f"{hi}{_digits_between(_bottom(rest_hi), rest_hi)}" if rest_hi else str(hi))
    return f"{head}({'|'.join(options)})"


def _top(shape: str) -> str:
    return "".join("-" if c == "-" else "9" for c in shape)


def _bottom(shape: str) -> str:
    return "".join("-" if c == "-" else "0" for c in shape)


def timestamp_schema(today: date) -> dict[str, Any]:
    """sent_at / captured_at as the server takes them (validation.timestamp): RFC 3339, from 2000-01-01T00:00:00Z to
    24 hours after the server's clock. A pattern cannot follow the clock or add an offset, so it states the part of
    that window every offset keeps inside it, as of `today` (the server's UTC date when it serves the document):
    any date from 2000-01-02 to yesterday; 2000-01-01 at or behind UTC; today at or ahead of UTC (Z included)."""
    yesterday = (today - timedelta(days=1)).isoformat()
    pattern = (f"^(({_digits_between('2000-01-02', yesterday)}){_TIME}{_ANY_OFFSET}"
               f"|2000-01-01{_TIME}{_BEHIND_UTC}|{today.isoformat()}{_TIME}{_AHEAD_OF_UTC})$")
    return {"type": "string", "format": "date-time", "pattern": pattern,
            "description": "RFC 3339 (ISO-8601 with Z or a ±hh:mm offset), from 2000-01-01T00:00:00Z to 24 hours "
                           "after the server's clock, else 422; absent: now. The pattern states the part of that "
                           f"window that holds whatever the offset, as of {today.isoformat()} (the server's date when "
                           "it served this document): to yesterday at any offset, today in UTC (Z) or ahead of it."}


def _errors(*codes: str) -> dict[str, Any]:
    """The responses of `codes`, and 503, which any endpoint answers while the database cannot be reached."""
    return {code: ERRORS[code] for code in (*codes, "503")}


AGENT_ID = {"name": "agent_id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}

SCHEMAS: dict[str, Any] = {
    "JsonValue": {
        "description": "Any JSON value whose keys and strings hold no NUL (U+0000): PostgreSQL text cannot store it",
        "anyOf": [{"type": "string", "pattern": NO_NUL}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
                  {"type": "array", "items": _ref("JsonValue")},
                  {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": _ref("JsonValue")}],
    },
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {
            "type": "object", "required": ["code", "message", "fields"], "additionalProperties": False,
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "fields": {"type": "object", "additionalProperties": {"type": "string"}}},
        }},
    },
    "Experiment": {
        "type": ["object", "null"], "required": ["id", "name", "kind"], "additionalProperties": False,
        "description": "The conversation's experiment; name and kind are null once it has been deleted.",
        "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]},
                       "kind": {"type": ["string", "null"], "enum": ["persona", "cta", "trigger", None]}},
    },
    "Variant": {
        "type": ["object", "null"], "required": ["id", "key", "name", "config"], "additionalProperties": False,
        "description": "The stamped variant; name is null once its experiment has been deleted.",
        "properties": {"id": {"type": "integer"}, "key": {"type": "string"},
                       "name": {"type": ["string", "null"]},
                       "config": {"type": ["object", "null"],
                                  "description": "The variant's config, for the widget to apply: a CTA's {\"cta\": "
                                                 "{label, url, prompt?}}, a trigger's {\"trigger\": {on, seconds?, "
                                                 "percent?, opening_message?}}, a persona's {\"persona\": …}, plus "
                                                 "any free-form keys; null once the experiment has been deleted"}},
    },
    "Persona": {
        "type": "object", "required": ["name", "tone"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "tone": {"type": "string"}},
    },
    "MessageRequest": {
        "type": "object", "required": ["visitor_id", "conversation_id", "role"],
        "example": {"visitor_id": "visitor-42", "conversation_id": "conv-1", "role": "visitor",
                    "text": "Hi, what does it cost?", "message_id": "conv-1-m1"},
        "properties": {
            "visitor_id": _opaque("The runtime's id of the visitor"),
            "conversation_id": _opaque("The runtime's id of the conversation, unique per agent"),
            "role": {"type": "string", "enum": ["visitor", "agent"]},
            "text": _optional({"type": "string", "pattern": NO_NUL,
                               "description": "The message as the visitor or agent wrote it, without NUL (U+0000)"},
                              'absent: ""'),
            "sent_at": _optional(TIMESTAMP, "absent: now", "When the message was sent"),
            "message_id": _optional(_opaque("Idempotency key within the conversation: a replay (same role and text) "
                                            "answers 200 with the first response; reused for another message, 409"),
                                    "absent: the server generates one"),
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
        "example": {"visitor_id": "visitor-42", "conversation_id": "conv-1", "fields": {"email": "ada@example.com"},
                    "idempotency_key": "conv-1-lead"},
        "properties": {
            "visitor_id": _opaque("The visitor of the conversation"),
            "conversation_id": _opaque("An existing conversation of this visitor"),
            "fields": _optional({"type": "object", "propertyNames": {"pattern": NO_NUL},
                                 "additionalProperties": _ref("JsonValue"),
                                 "description": "The captured fields, free-form JSON without NUL (U+0000) in keys "
                                                f"or strings; objects and arrays nested at most {MAX_JSON_DEPTH} "
                                                "levels (this one is the first)"},
                                "absent: {}"),
            "captured_at": _optional(TIMESTAMP, "absent: now", "When the lead was captured"),
            "idempotency_key": _optional(_opaque("Idempotency key of the lead within the conversation: a retry "
                                                 "(same fields) answers 200 with the first lead; reused for other "
                                                 "fields, 409"),
                                         "absent: no idempotency, each request is a new lead"),
        },
    },
    "EventRequest": {
        "type": "object", "required": ["visitor_id", "conversation_id", "name"],
        "example": {"visitor_id": "visitor-42", "conversation_id": "conv-1", "name": "booked_demo",
                    "event_id": "conv-1-booked"},
        "properties": {
            "visitor_id": _opaque("The visitor of the conversation"),
            "conversation_id": _opaque("An existing conversation of this visitor"),
            "name": {"type": "string", "pattern": "^[a-z0-9_.-]{1,60}$", "minLength": 1, "maxLength": 60,
                     "description": "The goal: 1–60 characters of a–z, 0–9, '_', '.', '-'; each name is a metric "
                                    "goal:<name> of the experiment"},
            "occurred_at": _optional(TIMESTAMP, "absent: now", "When the visitor reached the goal"),
            "event_id": _optional(_opaque("Idempotency key of the event within the conversation: a retry (same "
                                          "name) answers 200 with the first event; reused for another name, 409"),
                                  "absent: the server generates one"),
        },
    },
    "EventResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["event_id", "conversation_id", "name", "occurred_at", "variant"],
        "properties": {
            "event_id": {"type": "string", "description": "The request's event_id, or one generated"},
            "conversation_id": {"type": "string"}, "name": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "variant": _ref("Variant"),
        },
    },
    "LeadResponse": {
        "type": "object", "required": ["lead_id", "variant"], "additionalProperties": False,
        "properties": {"lead_id": {"type": "integer"}, "variant": _ref("Variant")},
    },
    "FeedbackRequest": {
        "type": "object", "required": ["visitor_id", "rating"],
        "example": {"visitor_id": "visitor-42", "rating": "up", "comment": "Quick and clear, thanks"},
        "properties": {
            "visitor_id": _opaque("The visitor of the conversation"),
            "rating": {"type": "string", "enum": ["up", "down"]},
            "comment": _optional({"type": "string", "maxLength": 2000, "pattern": NO_NUL,
                                  "description": "At most 2,000 characters, without NUL (U+0000)"}, 'absent: ""'),
            "given_at": _optional(TIMESTAMP, "absent: now", "When the visitor gave it"),
        },
    },
    "FeedbackResponse": {
        "type": "object", "additionalProperties": False,
        "required": ["feedback_id", "conversation_id", "rating", "comment", "given_at", "variant"],
        "properties": {
            "feedback_id": {"type": "integer"}, "conversation_id": {"type": "string"},
            "rating": {"type": "string", "enum": ["up", "down"]}, "comment": {"type": "string"},
            "given_at": {"type": "string", "format": "date-time"}, "variant": _ref("Variant"),
        },
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
                "type": ["object", "null"], "additionalProperties": False,
                "required": ["experiment", "variant", "assigned_at"],
                "properties": {"experiment": _ref("Experiment"), "variant": _ref("Variant"),
                               "assigned_at": {"type": "string", "format": "date-time"}},
            },
        },
    },
}


PATH_ID_EXAMPLES = {"conversation_id": "conv-1", "visitor_id": "visitor-42"}  # those of the request bodies' examples


_SAME_AGENT = {"agent_id": "$request.path.agent_id"}
_THE_CONVERSATION = {"visitor_id": "$request.body#/visitor_id", "conversation_id": "$response.body#/conversation_id"}
# What a message's answer leads to: the calls about the conversation it created (or continued) and its visitor.
CONVERSATION_LINKS = {
    "leadInTheConversation": {"operationId": "postLead", "parameters": _SAME_AGENT,
                              "requestBody": _THE_CONVERSATION,
                              "description": "A lead of this conversation: its visitor_id and conversation_id"},
    "goalInTheConversation": {"operationId": "postEvent", "parameters": _SAME_AGENT,
                              "requestBody": _THE_CONVERSATION,
                              "description": "A goal event of this conversation: its visitor_id and conversation_id"},
    "feedbackOnTheConversation": {"operationId": "postFeedback",
                                  "parameters": {**_SAME_AGENT, "conversation_id": "$response.body#/conversation_id"},
                                  "requestBody": {"visitor_id": "$request.body#/visitor_id"},
                                  "description": "The visitor's feedback on this conversation"},
    "personaOfTheConversation": {"operationId": "getConversationPersona",
                                 "parameters": {**_SAME_AGENT, "conversation_id": "$response.body#/conversation_id"}},
    "assignmentOfTheVisitor": {"operationId": "getVisitorAssignment",
                               "parameters": {**_SAME_AGENT, "visitor_id": "$request.body#/visitor_id"}},
}


def _path_id(id_name: str) -> dict[str, Any]:
    """A runtime id in the path."""
    id_schema = _opaque(f"The runtime's {id_name.replace('_', ' ')}, percent-encoded UTF-8 (it may start with or "
                        "hold '/')")
    return {"name": id_name, "in": "path", "required": True, "schema": id_schema,
            "example": PATH_ID_EXAMPLES[id_name]}


def _not_utf8(id_name: str, also: str = "") -> dict[str, Any]:
    return _json(_ref("Error"), f"{also}The {id_name} in the path is not UTF-8 (a percent-encoded byte that is not "
                                f"part of a UTF-8 character); `fields` names it")


def _lookup(operation_id: str, summary: str, id_name: str, schema: str, description: str) -> dict[str, Any]:
    """A read-only GET by a runtime id in the path."""
    return {"get": {
        "operationId": operation_id, "summary": summary,
        "parameters": [AGENT_ID, _path_id(id_name)],
        "responses": {"200": _json(_ref(schema), description), "400": _not_utf8(id_name),
                      **_errors("401", "404", "422")},
    }}


def openapi_document() -> dict[str, Any]:
    """The whole document; every operation needs the bearer key."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Agent Studio runtime API", "version": "1.0.0",
                 "description": "What the chat runtime calls: assignment, persona, messages, leads, goal events and feedback."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/agents/{agent_id}/messages": {"post": {
                "operationId": "postMessage",
                "summary": "Report a message; visitor messages are assigned a variant (idempotent on message_id)",
                "parameters": [AGENT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("MessageRequest")}}},
                "responses": {"201": {**_json(_ref("MessageResponse"), "Recorded"), "links": CONVERSATION_LINKS},
                              "200": {**_json(_ref("MessageResponse"), "A replay of message_id: the first response"),
                                      "links": CONVERSATION_LINKS},
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
            "/agents/{agent_id}/events": {"post": {
                "operationId": "postEvent",
                "summary": "Report a goal the visitor reached in a conversation (idempotent on event_id)",
                "parameters": [AGENT_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("EventRequest")}}},
                "responses": {"201": _json(_ref("EventResponse"), "Recorded"),
                              "200": _json(_ref("EventResponse"), "A retry of an event_id: the first event"),
                              **_errors("400", "401", "404", "409", "413", "422")},
            }},
            "/agents/{agent_id}/conversations/{conversation_id}/feedback": {"post": {
                "operationId": "postFeedback",
                "summary": "Record the visitor's feedback on a conversation; a later one replaces it",
                "parameters": [AGENT_ID, _path_id("conversation_id")],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("FeedbackRequest")}}},
                "responses": {"201": _json(_ref("FeedbackResponse"), "Recorded: the conversation's first feedback"),
                              "200": _json(_ref("FeedbackResponse"), "Recorded: it replaced the earlier feedback"),
                              "400": _not_utf8("conversation_id", "Malformed JSON, or a body that is not a JSON "
                                                                  "object. "),
                              **_errors("401", "404", "409", "413", "422")},
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
            "schemas": {**SCHEMAS, "Timestamp": timestamp_schema(datetime.now(timezone.utc).date())},
        },
    }
