"""The runtime's reports (SPEC §6): messages, leads, and the read-only persona and assignment lookups."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import MESSAGE_ROLES, Agent, Conversation, Lead, Message, Workspace, seconds_between, utcnow
from . import assignment, validation
from .assignment import Arm
from .errors import Conflict, NotFound, ValidationError
from .persona import effective_persona, system_prompt

MAX_DB_INT = 2**31 - 1

C, M = Conversation.__table__.c, Message.__table__.c
AGENT = (sa.select(Agent.id, Agent.persona_name, Agent.persona_tone, Agent.instructions, Workspace.name)
         .join(Workspace, Workspace.id == Agent.workspace_id)
         .where(Agent.id == sa.bindparam("agent_id"), Agent.workspace_id == sa.bindparam("workspace_id")))
# The conversation and, for a retry, the first response of its message_id: one query.
CONVERSATION_AND_REPLAY = (
    sa.select(C.id, C.visitor_id, C.experiment_id, C.variant_id, C.variant_key, M.response)
    .outerjoin(Message.__table__, sa.and_(M.conversation_id == C.id,
                                          M.client_message_id == sa.bindparam("message_id")))
    .where(C.agent_id == sa.bindparam("agent_id"), C.external_id == sa.bindparam("external_id"))
)
_AT = sa.bindparam("sent_at", type_=Conversation.started_at.type)
_UNSTAMPED = C.variant_id.is_(None)
_STARTED = sa.case((C.started_at > _AT, _AT), else_=C.started_at)
_LAST = sa.case((C.last_message_at < _AT, _AT), else_=C.last_message_at)
# Step 5 on an existing conversation, atomically: stamp only if unstamped; started/last = min/max of sent_at;
# the counters the results read (visitor messages, session seconds) move in the same statement.
TOUCH_CONVERSATION = (
    sa.update(Conversation.__table__)
    .where(C.agent_id == sa.bindparam("where_agent_id"), C.external_id == sa.bindparam("where_external_id"))
    .values(started_at=_STARTED,
            last_message_at=_LAST,
            session_seconds=seconds_between(_STARTED, _LAST),
            visitor_messages=C.visitor_messages + sa.bindparam("visitor_increment", type_=sa.Integer),
            experiment_id=sa.case((_UNSTAMPED, sa.bindparam("stamp_experiment_id", type_=sa.Integer)),
                                  else_=C.experiment_id),
            variant_id=sa.case((_UNSTAMPED, sa.bindparam("stamp_variant_id", type_=sa.Integer)), else_=C.variant_id),
            variant_key=sa.case((_UNSTAMPED, sa.bindparam("stamp_variant_key", type_=sa.String)),
                                else_=C.variant_key))
    .returning(C.id, C.visitor_id, C.experiment_id, C.variant_id, C.variant_key)
)
REPLAYED = sa.select(M.response).where(M.conversation_id == sa.bindparam("conversation_id"),
                                       M.client_message_id == sa.bindparam("message_id"))


@dataclass(frozen=True)
class MessageResult:
    body: dict[str, Any]
    replayed: bool


@dataclass(frozen=True)
class RuntimeAgent:
    id: int
    persona_name: str
    persona_tone: str
    instructions: str
    workspace_name: str


def _agent(workspace_id: int, agent_id: int) -> RuntimeAgent:
    """The agent if the key's workspace owns it; anything else is a 404 (ids never leak)."""
    row = None
    if 1 <= agent_id <= MAX_DB_INT:
        row = assignment.execute(AGENT, {"agent_id": agent_id, "workspace_id": workspace_id}).first()
    if row is None:
        raise NotFound("No such agent.")
    return RuntimeAgent(*row)


def _no_nul(value: Any) -> bool:
    """True when no string inside a JSON value holds NUL (PostgreSQL text cannot store it)."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(_no_nul(k) and _no_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_no_nul(v) for v in value)
    return True


def _ids(data: dict[str, Any], errors: dict[str, str]) -> tuple[str, str]:
    return (validation.opaque_id(data.get("visitor_id"), "visitor_id", errors),
            validation.opaque_id(data.get("conversation_id"), "conversation_id", errors))


def experiment_json(arm: Arm | None) -> dict[str, Any] | None:
    """`{id, name, kind}`; name and kind are null once the experiment has been deleted."""
    if arm is None:
        return None
    return {"id": arm.experiment_id, "name": arm.experiment_name, "kind": arm.kind}


def variant_json(arm: Arm | None) -> dict[str, Any] | None:
    """`{id, key, name}` from the stamp; name is null once the experiment has been deleted."""
    if arm is None:
        return None
    return {"id": arm.variant_id, "key": arm.variant_key, "name": arm.variant_name}


def _persona_json(agent: RuntimeAgent, arm: Arm | None) -> dict[str, Any]:
    persona = effective_persona(agent.persona_name, agent.persona_tone, arm.kind if arm else None,
                                arm.config if arm else None)
    return {"persona": {"name": persona.name, "tone": persona.tone},
            "system_prompt": system_prompt(persona, agent.workspace_name, agent.instructions)}


def record_message(workspace_id: int, agent_id: int, data: dict[str, Any]) -> MessageResult:
    """Record one message (SPEC §5–§6); visitor messages assign; a replayed message_id answers the first body."""
    errors: dict[str, str] = {}
    visitor_id, external_id = _ids(data, errors)
    role = data.get("role")
    if role not in MESSAGE_ROLES:
        errors["role"] = "role is required and must be 'visitor' or 'agent'."
    text = data.get("text")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        errors["text"] = "text must be a string."
    elif "\x00" in text:
        errors["text"] = "text must not contain NUL characters."
    sent_at = validation.timestamp(data.get("sent_at"), "sent_at", errors) or utcnow()
    message_id = data.get("message_id")
    if message_id is not None:
        message_id = validation.opaque_id(message_id, "message_id", errors)
    if errors:
        raise ValidationError(errors)
    agent = _agent(workspace_id, agent_id)

    found = assignment.execute(CONVERSATION_AND_REPLAY, {"agent_id": agent_id, "external_id": external_id,
                                                         "message_id": message_id}).first()
    if found is not None:
        _check_visitor(found.visitor_id, visitor_id, external_id)
        if found.response is not None:
            return MessageResult(found.response, True)

    stamp = (found.experiment_id, found.variant_id, found.variant_key) if found else (None, None, None)
    arm = assignment.stamped_arm(*stamp) if found else None
    if arm is None and role == "visitor":
        arm = assignment.assign(agent_id, visitor_id)

    conversation_id = None
    if found is None:
        conversation_id = assignment.insert_ignoring_conflict(Conversation, {
            "agent_id": agent_id, "external_id": external_id, "visitor_id": visitor_id,
            "experiment_id": arm.experiment_id if arm else None, "variant_id": arm.variant_id if arm else None,
            "variant_key": arm.variant_key if arm else None, "started_at": sent_at, "last_message_at": sent_at,
            "session_seconds": 0.0, "visitor_messages": int(role == "visitor"), "lead_count": 0,
        }, ["agent_id", "external_id"])
    if conversation_id is None:
        # An existing conversation (or one a concurrent request just created): stamp it unless already
        # stamped, and widen its time span; the returned stamp is the truth.
        conversation_id, arm = _touch_conversation(agent_id, external_id, visitor_id, arm, sent_at, role)

    message_id = message_id or uuid.uuid4().hex
    body = {"conversation_id": external_id, "message_id": message_id,
            "experiment": experiment_json(arm), "variant": variant_json(arm), **_persona_json(agent, arm)}
    inserted = assignment.insert_ignoring_conflict(Message, {
        "conversation_id": conversation_id, "role": role, "text": text, "sent_at": sent_at,
        "variant_id": arm.variant_id if arm else None, "client_message_id": message_id, "response": body,
    }, ["conversation_id", "client_message_id"])
    if inserted is None:
        # A concurrent delivery of the same message_id won: answer its body and write nothing.
        db.session.rollback()
        first = assignment.execute(REPLAYED, {"conversation_id": conversation_id, "message_id": message_id}).scalar()
        return MessageResult(first, True)
    db.session.commit()
    return MessageResult(body, False)


def _check_visitor(owner: str, visitor_id: str, external_id: str) -> None:
    if owner != visitor_id:
        raise Conflict(f"Conversation '{external_id}' belongs to another visitor.",
                       {"conversation_id": "This conversation id is already used by another visitor."})


def _touch_conversation(agent_id: int, external_id: str, visitor_id: str, arm: Arm | None,
                        sent_at: datetime, role: str) -> tuple[int, Arm | None]:
    """Stamp an existing conversation unless stamped, widen its span; the returned stamp is the truth."""
    row = assignment.execute(TOUCH_CONVERSATION, {
        "where_agent_id": agent_id, "where_external_id": external_id, "sent_at": sent_at,
        "visitor_increment": int(role == "visitor"),
        "stamp_experiment_id": arm.experiment_id if arm else None, "stamp_variant_id": arm.variant_id if arm else None,
        "stamp_variant_key": arm.variant_key if arm else None}).one()
    _check_visitor(row.visitor_id, visitor_id, external_id)
    if arm is None or row.variant_id != arm.variant_id:
        arm = assignment.stamped_arm(row.experiment_id, row.variant_id, row.variant_key)
    return row.id, arm


def record_lead(workspace_id: int, agent_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """Record a lead of an existing conversation of the visitor; it carries the conversation's stamp."""
    errors: dict[str, str] = {}
    visitor_id, external_id = _ids(data, errors)
    fields = data.get("fields")
    if fields is None:
        fields = {}
    elif not isinstance(fields, dict):
        errors["fields"] = "fields must be a JSON object."
    elif not _no_nul(fields):
        errors["fields"] = "fields must not contain NUL characters."
    captured_at = validation.timestamp(data.get("captured_at"), "captured_at", errors) or utcnow()
    if errors:
        raise ValidationError(errors)
    _agent(workspace_id, agent_id)
    conversation = db.session.scalar(sa.select(Conversation).where(
        Conversation.agent_id == agent_id, Conversation.external_id == external_id))
    if conversation is None:
        raise NotFound(f"No conversation '{external_id}' for this agent.",
                       {"conversation_id": "No such conversation: report a message first."})
    _check_visitor(conversation.visitor_id, visitor_id, external_id)
    lead = Lead(agent_id=agent_id, conversation_id=conversation.id, visitor_id=visitor_id, fields=fields,
                captured_at=captured_at, experiment_id=conversation.experiment_id,
                variant_id=conversation.variant_id, variant_key=conversation.variant_key)
    db.session.add(lead)
    conversation.lead_count = Conversation.lead_count + 1  # atomic in SQL: racing leads both count
    db.session.flush()
    arm = assignment.stamped_arm(conversation.experiment_id, conversation.variant_id, conversation.variant_key)
    body = {"lead_id": lead.id, "variant": variant_json(arm)}
    db.session.commit()
    return body


def _path_id(value: str, field: str) -> str:
    errors: dict[str, str] = {}
    value = validation.opaque_id(value, field, errors)
    if errors:
        raise ValidationError(errors)
    return value


def conversation_persona(workspace_id: int, agent_id: int, conversation_id: str) -> dict[str, Any]:
    """The effective persona and system prompt of a conversation, read-only."""
    external_id = _path_id(conversation_id, "conversation_id")
    agent = _agent(workspace_id, agent_id)
    row = db.session.execute(
        sa.select(Conversation.visitor_id, Conversation.experiment_id, Conversation.variant_id,
                  Conversation.variant_key)
        .where(Conversation.agent_id == agent_id, Conversation.external_id == external_id)
    ).first()
    if row is None:
        raise NotFound(f"No conversation '{external_id}' for this agent.")
    arm = assignment.stamped_arm(row.experiment_id, row.variant_id, row.variant_key)
    return {"conversation_id": external_id, "visitor_id": row.visitor_id, "experiment": experiment_json(arm),
            "variant": variant_json(arm), **_persona_json(agent, arm)}


def visitor_assignment(workspace_id: int, agent_id: int, visitor_id: str) -> dict[str, Any]:
    """The visitor's assignment in the agent's active experiment, or null; never assigns."""
    visitor_id = _path_id(visitor_id, "visitor_id")
    _agent(workspace_id, agent_id)
    found = assignment.current_assignment(agent_id, visitor_id)
    if found is None:
        return {"visitor_id": visitor_id, "assignment": None}
    arm, assigned_at = found
    return {"visitor_id": visitor_id, "assignment": {
        "experiment": experiment_json(arm), "variant": variant_json(arm), "assigned_at": assigned_at.isoformat()}}
