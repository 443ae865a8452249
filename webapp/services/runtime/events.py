"""Goal events (SPEC §13): the runtime reports that a visitor reached a goal ("booked_demo") in a conversation.

The conversation must exist and be the visitor's; the event carries the conversation's stamp as it is when the event
arrives; an `event_id` makes a retry idempotent (200 with the first answer), as `message_id` does for messages.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Conversation, GoalEvent, utcnow
from webapp.services import validation
from webapp.services.errors import Conflict, NotFound, ValidationError
from webapp.services.runtime import assignment
from webapp.services.runtime.service import RuntimeAuth, variant_json

G = GoalEvent.__table__.c
EARLIER = sa.select(G.id, G.name, G.occurred_at, G.experiment_id, G.variant_id, G.variant_key).where(
    G.conversation_id == sa.bindparam("conversation_id"), G.event_id == sa.bindparam("event_id"))


@dataclass(frozen=True)
class EventReport:
    """A validated POST …/events body."""

    visitor_id: str
    external_id: str
    name: str
    occurred_at: datetime
    event_id: str | None


@dataclass(frozen=True)
class EventResult:
    body: dict[str, Any]
    replayed: bool


def parse_event(data: dict[str, Any]) -> EventReport:
    """Validate an event body; ValidationError names every bad field."""
    errors: dict[str, str] = {}
    visitor_id = validation.opaque_id(data.get("visitor_id"), "visitor_id", errors)
    external_id = validation.opaque_id(data.get("conversation_id"), "conversation_id", errors)
    name = validation.goal_name(data.get("name"), "name", errors)
    occurred_at = validation.timestamp(data.get("occurred_at"), "occurred_at", errors) or utcnow()
    event_id = validation.optional_opaque_id(data, "event_id", errors)
    if errors:
        raise ValidationError(errors)
    return EventReport(visitor_id, external_id, name, occurred_at, event_id)


def record_event(agent_id: int, data: dict[str, Any], auth: RuntimeAuth) -> EventResult:
    """Record a goal event of an existing conversation of the visitor (`auth`: the route's key and agent)."""
    report = parse_event(data)
    if auth.agent is None or auth.agent_id != agent_id:
        raise NotFound("No such agent.")
    conversation = db.session.execute(
        sa.select(Conversation.id, Conversation.visitor_id, Conversation.experiment_id, Conversation.variant_id,
                  Conversation.variant_key)
        .where(Conversation.agent_id == agent_id, Conversation.external_id == report.external_id)).first()
    if conversation is None:
        raise NotFound(f"No conversation '{report.external_id}' for this agent.",
                       {"conversation_id": "No such conversation: report a message first."})
    if conversation.visitor_id != report.visitor_id:
        raise Conflict(f"Conversation '{report.external_id}' belongs to another visitor.",
                       {"conversation_id": "This conversation id is already used by another visitor."})
    if report.event_id is not None:
        earlier = _earlier(conversation.id, report)
        if earlier is not None:
            return EventResult(_answer(report.external_id, report.event_id, earlier), True)
    event_id = report.event_id or uuid.uuid4().hex
    row = {"agent_id": agent_id, "conversation_id": conversation.id, "visitor_id": report.visitor_id,
           "name": report.name, "occurred_at": report.occurred_at, "experiment_id": conversation.experiment_id,
           "variant_id": conversation.variant_id, "variant_key": conversation.variant_key, "event_id": event_id}
    if assignment.insert_ignoring_conflict(GoalEvent, row, ["conversation_id", "event_id"]) is None:
        # A concurrent delivery of the same event_id won: answer its event and write nothing.
        db.session.rollback()
        return EventResult(_answer(report.external_id, event_id, _earlier(conversation.id, report)), True)
    db.session.commit()
    return EventResult(_answer(report.external_id, event_id, SimpleNamespace(**row)), False)


def _earlier(conversation_id: int, report: EventReport) -> Any:
    """The conversation's event with the report's event_id, if any, when it names the same goal; an event_id
    already used for another goal is a client's bug, not a retry: 409 (`occurred_at` is not compared, as for
    messages: a retry that omits it gets a new default)."""
    earlier = assignment.execute(EARLIER, {"conversation_id": conversation_id, "event_id": report.event_id}).first()
    if earlier is not None and earlier.name != report.name:
        raise Conflict(f"event_id '{report.event_id}' was already used in conversation '{report.external_id}' "
                       f"for the goal '{earlier.name}'.",
                       {"event_id": "Already used in this conversation for another goal: send a new event_id for a "
                                    "new event."})
    return earlier


def _answer(external_id: str, event_id: str, event: Any) -> dict[str, Any]:
    """The answer about an event (a retry gets the first one's: its name, time and stamp)."""
    arm = assignment.stamped_arm(event.experiment_id, event.variant_id, event.variant_key)
    return {"event_id": event_id, "conversation_id": external_id, "name": event.name,
            "occurred_at": event.occurred_at.isoformat(), "variant": variant_json(arm)}
