"""The runtime's rules (SPEC §5–§6) as pure functions on plain data: no database, no Flask.

`parse_*` validate a report; `decide_*` take what the database holds (a `State`, read in one round trip by the
store) and a report, and return what to write and what to answer — or raise the domain error to answer. The
store applies a decision; when a concurrent request won a unique key first it reads again and asks again.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from webapp.models import FEEDBACK_RATINGS, MAX_DB_ID, MESSAGE_ROLES, json_text
from webapp.services import validation
from webapp.services.errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationError
from webapp.services.runtime import bucketing
from webapp.services.runtime.persona import effective_persona, system_prompt

KEY_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is written at most this often: a write per request costs


# --- What the database holds --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Arm:
    """The variant a conversation runs on: its stamp, and the live fields while the experiment exists."""

    experiment_id: int
    variant_id: int
    variant_key: str
    experiment_name: str | None = None
    kind: str | None = None
    variant_name: str | None = None
    config: dict[str, Any] | None = None


@dataclass(frozen=True)
class Option:
    """A variant of the agent's active experiment (the options of step 4), in position order."""

    arm: Arm
    weight: int


@dataclass(frozen=True)
class Agent:
    id: int
    persona_name: str
    persona_tone: str
    instructions: str
    workspace_name: str


@dataclass(frozen=True)
class Key:
    """The API key the request came with, as stored (None in `Access` when no key has its hash)."""

    id: int
    revoked: bool
    last_used_at: datetime | None


@dataclass(frozen=True)
class Access:
    """Who asks: the key (None for an unknown key; absent for a trusted in-process caller) and the path's agent
    (None when the workspace does not own it)."""

    workspace_id: int | None
    agent: Agent | None
    key: Key | None = None
    by_key: bool = True


@dataclass(frozen=True)
class StoredConversation:
    id: int
    visitor_id: str
    stamp: Arm | None  # None: not stamped yet


@dataclass(frozen=True)
class EarlierMessage:
    """The first delivery of a message_id in the conversation: what it said and its reply as stored text."""

    role: str
    text: str
    reply: str


@dataclass(frozen=True)
class EarlierLead:
    id: int
    fields: Any


@dataclass(frozen=True)
class EarlierEvent:
    """The conversation's goal event with the client's event_id; `stamped`: it carried the conversation's stamp
    (a stamp never changes once set, so an unstamped event is one that came before the first assignment)."""

    name: str
    occurred_at: datetime
    stamped: bool


@dataclass(frozen=True)
class Assigned:
    """The visitor's durable row in the active experiment (step 3)."""

    variant_id: int
    variant_key: str
    assigned_at: datetime


@dataclass(frozen=True)
class State:
    """Everything a decision needs, read in one round trip."""

    agent: Agent
    options: tuple[Option, ...] = ()  # the active experiment's arms; empty when none runs
    conversation: StoredConversation | None = None
    assigned: Assigned | None = None
    earlier_message: EarlierMessage | None = None
    earlier_lead: EarlierLead | None = None
    earlier_event: EarlierEvent | None = None
    earlier_feedback_id: int | None = None  # the conversation's feedback, which a new one replaces


# --- Reports ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MessageReport:
    """A validated POST …/messages body. `message_id` is the client's idempotency key (None: none sent);
    `new_message_id` the id a first delivery without one is answered with."""

    visitor_id: str
    external_id: str
    role: str
    text: str
    sent_at: datetime
    message_id: str | None
    new_message_id: str


@dataclass(frozen=True)
class LeadReport:
    visitor_id: str
    external_id: str
    fields: dict[str, Any]
    captured_at: datetime
    idempotency_key: str | None


@dataclass(frozen=True)
class EventReport:
    """A validated POST …/events body; `event_id` the client's idempotency key (None: none sent), `new_event_id`
    the id a first delivery is recorded and answered with."""

    visitor_id: str
    external_id: str
    name: str
    occurred_at: datetime
    event_id: str | None
    new_event_id: str


def _ids(data: dict[str, Any], errors: dict[str, str]) -> tuple[str, str]:
    return (validation.opaque_id(data.get("visitor_id"), "visitor_id", errors),
            validation.opaque_id(data.get("conversation_id"), "conversation_id", errors))


def parse_message(data: dict[str, Any], now: datetime) -> MessageReport:
    """Validate a message body (SPEC §6); ValidationError names every bad field. `sent_at` defaults to `now`."""
    errors: dict[str, str] = {}
    visitor_id, external_id = _ids(data, errors)
    role = data.get("role")
    if role not in MESSAGE_ROLES:
        errors["role"] = "role is required and must be 'visitor' or 'agent'."
    text = validation.runtime_text(data.get("text"), "text", errors)
    sent_at = validation.timestamp(data.get("sent_at"), "sent_at", errors, now) or now
    message_id = validation.optional_opaque_id(data, "message_id", errors)
    if errors:
        raise ValidationError(errors)
    return MessageReport(visitor_id, external_id, role, text, sent_at, message_id, message_id or uuid.uuid4().hex)


def parse_lead(data: dict[str, Any], now: datetime) -> LeadReport:
    """Validate a lead body (SPEC §6); ValidationError names every bad field."""
    errors: dict[str, str] = {}
    visitor_id, external_id = _ids(data, errors)
    fields = data.get("fields")
    if fields is None:
        fields = {}
    elif not isinstance(fields, dict):
        errors["fields"] = "fields must be a JSON object."
    else:  # bounded depth before anything recurses into it; no NUL (PostgreSQL text cannot store it)
        validation.json_value(fields, "fields", errors, label="fields", refuse_nul=True)
    captured_at = validation.timestamp(data.get("captured_at"), "captured_at", errors, now) or now
    key = validation.optional_opaque_id(data, "idempotency_key", errors)
    if errors:
        raise ValidationError(errors)
    return LeadReport(visitor_id, external_id, fields, captured_at, key)


def parse_event(data: dict[str, Any], now: datetime) -> EventReport:
    """Validate a goal event body (SPEC §13); ValidationError names every bad field. `occurred_at` defaults to
    `now`."""
    errors: dict[str, str] = {}
    visitor_id, external_id = _ids(data, errors)
    name = validation.goal_name(data.get("name"), "name", errors)
    occurred_at = validation.timestamp(data.get("occurred_at"), "occurred_at", errors, now) or now
    event_id = validation.optional_opaque_id(data, "event_id", errors)
    if errors:
        raise ValidationError(errors)
    return EventReport(visitor_id, external_id, name, occurred_at, event_id, event_id or uuid.uuid4().hex)


@dataclass(frozen=True)
class FeedbackReport:
    """A validated POST …/conversations/{conversation_id}/feedback (the id from the path, the rest from the body)."""

    visitor_id: str
    external_id: str
    rating: str
    comment: str
    given_at: datetime


FEEDBACK_COMMENT_MAX = 2000


def parse_feedback(conversation_id: str, data: dict[str, Any], now: datetime) -> FeedbackReport:
    """Validate a feedback (SPEC §12): the path's conversation id first (400/422), then the body's fields, every bad
    one named. `given_at` defaults to `now`."""
    external_id = parse_path_id(conversation_id, "conversation_id")
    errors: dict[str, str] = {}
    visitor_id = validation.opaque_id(data.get("visitor_id"), "visitor_id", errors)
    rating = data.get("rating")
    if rating not in FEEDBACK_RATINGS:
        errors["rating"] = "rating is required and must be 'up' or 'down'."
    comment = validation.runtime_text(data.get("comment"), "comment", errors, max_len=FEEDBACK_COMMENT_MAX)
    given_at = validation.timestamp(data.get("given_at"), "given_at", errors, now) or now
    if errors:
        raise ValidationError(errors)
    return FeedbackReport(visitor_id, external_id, rating, comment, given_at)


def parse_path_id(value: str, field: str) -> str:
    """A runtime id from the URL path: 400 when its bytes were not UTF-8 (the route passes each such byte as a lone
    surrogate, as surrogateescape decodes it), else the rules of any runtime id (422)."""
    undecodable = validation.UNDECODABLE_BYTE_RE.search(value)
    if undecodable:
        byte = f"%{ord(undecodable.group()) - 0xDC00:02X}"
        raise BadRequest(f"The {field} in the URL is not UTF-8: the byte {byte} is not part of a UTF-8 character. "
                         "Percent-encode the UTF-8 bytes of the id.",
                         {field: f"{field} must be UTF-8 text ({byte} is not part of a UTF-8 character)."})
    errors: dict[str, str] = {}
    value = validation.opaque_id(value, field, errors)
    if errors:
        raise ValidationError(errors)
    return value


def agent_id_in_range(agent_id: int | None) -> int | None:
    """The path's agent id if a row could have it (larger ids would overflow the driver's INTEGER), else None."""
    return agent_id if agent_id is not None and 1 <= agent_id <= MAX_DB_ID else None


# --- Access -------------------------------------------------------------------------------------------------------

def missing_key() -> Unauthorized:
    return Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")


def check_key(access: Access) -> None:
    """401 for an unknown or revoked key (before anything about the agent)."""
    if not access.by_key:
        return
    if access.key is None:
        raise Unauthorized("Invalid API key.")
    if access.key.revoked:
        raise Unauthorized("This API key has been revoked.")


def authorize(access: Access) -> Agent:
    """The path's agent, if the key is live and its workspace owns the agent: else 401, or 404 (ids never leak)."""
    check_key(access)
    if access.agent is None:
        raise NotFound("No such agent.")
    return access.agent


def key_touch_due(key: Key | None, now: datetime) -> bool:
    """True when the key's last_used_at is unset or older than KEY_TOUCH_INTERVAL."""
    return key is not None and (key.last_used_at is None or now - key.last_used_at > KEY_TOUCH_INTERVAL)


# --- Assignment (SPEC §5) -----------------------------------------------------------------------------------------

def bucket(options: tuple[Option, ...], visitor_id: str) -> Arm:
    """Step 4: the visitor's bucket among the active experiment's arms (position order)."""
    h = bucketing.bucket_value(options[0].arm.experiment_id, visitor_id)
    return options[bucketing.choose_position(h, [o.weight for o in options])].arm


def assigned_arm(options: tuple[Option, ...], assigned: Assigned) -> Arm:
    """Step 3: the arm of the visitor's row, with live fields while its variant is one of the active arms."""
    live = next((o.arm for o in options if o.arm.variant_id == assigned.variant_id), None)
    return live or Arm(options[0].arm.experiment_id, assigned.variant_id, assigned.variant_key)


def choose_arm(state: State, visitor_id: str) -> tuple[Arm | None, bool]:
    """Steps 1–4 for a visitor message: (the arm, whether its assignment row is new and must be inserted)."""
    if state.conversation is not None and state.conversation.stamp is not None:
        return state.conversation.stamp, False  # step 1: sticky within the conversation
    if not state.options:
        return None, False  # step 2: no active experiment, the agent's defaults
    if state.assigned is not None:
        return assigned_arm(state.options, state.assigned), False  # step 3
    return bucket(state.options, visitor_id), True  # step 4


# --- Answers ------------------------------------------------------------------------------------------------------

def experiment_json(arm: Arm | None) -> dict[str, Any] | None:
    """`{id, name, kind}`; name and kind are null once the experiment has been deleted."""
    if arm is None:
        return None
    return {"id": arm.experiment_id, "name": arm.experiment_name, "kind": arm.kind}


def variant_json(arm: Arm | None) -> dict[str, Any] | None:
    """`{id, key, name, config}` of the stamp; name and config are null once the experiment has been deleted. The
    config lets the widget apply a CTA or a trigger (SPEC §13)."""
    if arm is None:
        return None
    return {"id": arm.variant_id, "key": arm.variant_key, "name": arm.variant_name, "config": arm.config}


def persona_json(agent: Agent, arm: Arm | None) -> dict[str, Any]:
    """The effective persona (SPEC §4) and the system prompt built from it."""
    kind, config = (arm.kind, arm.config) if arm else (None, None)
    persona = effective_persona(agent.persona_name, agent.persona_tone, kind, config)
    return {"persona": {"name": persona.name, "tone": persona.tone},
            "system_prompt": system_prompt(persona, agent.workspace_name, agent.instructions, kind, config)}


def stamp_json(agent: Agent, arm: Arm | None) -> dict[str, Any]:
    """What every answer about a conversation or visitor says of its arm: experiment, variant, persona, prompt."""
    return {"experiment": experiment_json(arm), "variant": variant_json(arm), **persona_json(agent, arm)}


def check_owner(conversation: StoredConversation, visitor_id: str, external_id: str) -> None:
    """A conversation id belongs to the visitor who opened it: another visitor's is a 409."""
    if conversation.visitor_id != visitor_id:
        raise Conflict(f"Conversation '{external_id}' belongs to another visitor.",
                       {"conversation_id": "This conversation id is already used by another visitor."})


def existing_conversation(state: State, external_id: str, visitor_id: str | None = None) -> StoredConversation:
    """The conversation a lead (or a lookup) names: 404 if absent, 409 if another visitor's (`visitor_id` given)."""
    if state.conversation is None:
        raise NotFound(f"No conversation '{external_id}' for this agent.",
                       {"conversation_id": "No such conversation: report a message first."})
    if visitor_id is not None:
        check_owner(state.conversation, visitor_id, external_id)
    return state.conversation


# --- Decisions ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Replay:
    """A retry of a delivery already recorded: answer its first reply (text as stored), write nothing."""

    reply: str


@dataclass(frozen=True)
class NewAssignment:
    agent_id: int
    arm: Arm
    visitor_id: str
    assigned_at: datetime  # the assigning message's sent_at: assignments share the runtime's timeline


@dataclass(frozen=True)
class NewConversation:
    agent_id: int
    external_id: str
    visitor_id: str
    stamp: Arm | None
    started_at: datetime
    visitor_messages: int


@dataclass(frozen=True)
class Touch:
    """An existing conversation's update for one more message: stamp it if still unstamped, widen its span (first
    to last message), count the message if it is a stamped visitor message."""

    conversation_id: int
    stamp: Arm | None
    was_stamped: bool  # stamped when read: a stamp never changes, so no concurrent write can make this one wrong
    sent_at: datetime
    visitor_increment: int


@dataclass(frozen=True)
class NewMessage:
    role: str
    text: str
    sent_at: datetime
    variant_id: int | None
    client_message_id: str
    reply: str  # the answer, serialised once: stored with the message, sent as it is, replayed byte for byte


@dataclass(frozen=True)
class MessageWrite:
    """What recording a message writes, in this order; exactly one of `conversation` and `touch` is set."""

    assignment: NewAssignment | None
    conversation: NewConversation | None
    touch: Touch | None
    message: NewMessage

    @property
    def stands_alone(self) -> bool:
        """True when the write is right whatever committed since the read, short of a unique key that stops it.

        A new conversation, or a stamped one (a stamp never changes): yes. An unstamped one that this message
        leaves unstamped: yes too — if a concurrent message stamped it meanwhile, the outcome is that of this
        message landing first (no stamp, not counted, the span widened either way). An unstamped one that this
        message stamps: no — a concurrent message may have stamped it with another arm (the active experiment
        changed between the two reads), so the store checks the stamp its update leaves before committing.
        """
        return self.touch is None or self.touch.was_stamped or self.touch.stamp is None


def replay(earlier: EarlierMessage, report: MessageReport) -> Replay:
    """The first delivery's reply when `report` repeats it (same role and text; `sent_at` is not compared: a retry
    that omits it gets a new default). A message_id reused for another message is a client's bug, not a retry:
    answering the first reply would silently drop the new message, so it is a 409 naming message_id."""
    if earlier.role != report.role or earlier.text != report.text:
        raise Conflict(f"message_id '{report.message_id}' was already used in conversation '{report.external_id}' "
                       "for a different message.",
                       {"message_id": "Already used in this conversation for a message with another role or text: "
                                      "send a new message_id for a new message."})
    return Replay(earlier.reply)


def decide_message(state: State, report: MessageReport) -> Replay | MessageWrite:
    """SPEC §5 steps 1–5 and the replay rule for one message; raises Conflict for a conversation id of another
    visitor or a message_id reused for another message."""
    conversation = state.conversation
    if conversation is not None:
        check_owner(conversation, report.visitor_id, report.external_id)
        if state.earlier_message is not None:
            return replay(state.earlier_message, report)
    if report.role == "visitor":
        arm, new_assignment = choose_arm(state, report.visitor_id)
    else:  # agent messages never assign: they carry the stamp, or none
        arm, new_assignment = (conversation.stamp if conversation else None), False
    reply = json_text({"conversation_id": report.external_id, "message_id": report.new_message_id,
                       **stamp_json(state.agent, arm)})
    message = NewMessage(report.role, report.text, report.sent_at, arm.variant_id if arm else None,
                         report.new_message_id, reply)
    # Only a stamped visitor message counts towards the results: what a visitor did before being assigned is not
    # an outcome of the variant.
    counted = int(report.role == "visitor" and arm is not None)
    assignment = NewAssignment(state.agent.id, arm, report.visitor_id, report.sent_at) if new_assignment else None
    if conversation is None:
        return MessageWrite(assignment, NewConversation(state.agent.id, report.external_id, report.visitor_id, arm,
                                                        report.sent_at, counted), None, message)
    touch = Touch(conversation.id, arm, conversation.stamp is not None, report.sent_at, counted)
    return MessageWrite(assignment, None, touch, message)


@dataclass(frozen=True)
class LeadWrite:
    """A new lead; `counted`: it moves the conversation's lead count (only a stamped conversation's lead does)."""

    conversation_id: int
    agent_id: int
    visitor_id: str
    fields: dict[str, Any]
    captured_at: datetime
    stamp: Arm | None
    idempotency_key: str | None

    @property
    def counted(self) -> bool:
        return self.stamp is not None


@dataclass(frozen=True)
class LeadReplay:
    lead_id: int


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def decide_lead(state: State, report: LeadReport) -> LeadReplay | LeadWrite:
    """A lead of an existing conversation of the visitor (404, 409), carrying its stamp; a retry with the same
    idempotency_key and fields answers the first lead, the same key with other fields is a 409."""
    conversation = existing_conversation(state, report.external_id, report.visitor_id)
    earlier = state.earlier_lead
    if earlier is not None:
        if _canonical(earlier.fields) != _canonical(report.fields):  # as JSON: true is not 1, 1.0 is not 1
            raise Conflict(f"idempotency_key '{report.idempotency_key}' was already used in this conversation for a "
                           "lead with other fields.",
                           {"idempotency_key": "Already used in this conversation for a lead with other fields: "
                                               "send a new key for a new lead."})
        return LeadReplay(earlier.id)
    return LeadWrite(conversation.id, state.agent.id, report.visitor_id, report.fields, report.captured_at,
                     conversation.stamp, report.idempotency_key)


def lead_json(lead_id: int, stamp: Arm | None) -> dict[str, Any]:
    return {"lead_id": lead_id, "variant": variant_json(stamp)}


@dataclass(frozen=True)
class EventWrite:
    """A new goal event, carrying the conversation's stamp as it is now."""

    conversation_id: int
    agent_id: int
    visitor_id: str
    name: str
    occurred_at: datetime
    stamp: Arm | None
    event_id: str


@dataclass(frozen=True)
class EventReplay:
    answer: dict[str, Any]


def decide_event(state: State, report: EventReport) -> EventReplay | EventWrite:
    """A goal event of an existing conversation of the visitor (404, 409), carrying its stamp; a retry with the
    same event_id and name answers the first event (its time and stamp), the same event_id for another goal is a
    409 naming it (`occurred_at` is not compared, as for messages: a retry that omits it gets a new default)."""
    conversation = existing_conversation(state, report.external_id, report.visitor_id)
    earlier = state.earlier_event
    if earlier is not None:
        if earlier.name != report.name:
            raise Conflict(f"event_id '{report.event_id}' was already used in conversation '{report.external_id}' "
                           f"for the goal '{earlier.name}'.",
                           {"event_id": "Already used in this conversation for another goal: send a new event_id for "
                                        "a new event."})
        return EventReplay(event_json(report.external_id, report.new_event_id, earlier.name, earlier.occurred_at,
                                      conversation.stamp if earlier.stamped else None))
    return EventWrite(conversation.id, state.agent.id, report.visitor_id, report.name, report.occurred_at,
                      conversation.stamp, report.new_event_id)


def event_json(external_id: str, event_id: str, name: str, occurred_at: datetime, stamp: Arm | None) -> dict[str, Any]:
    return {"event_id": event_id, "conversation_id": external_id, "name": name,
            "occurred_at": occurred_at.isoformat(), "variant": variant_json(stamp)}


@dataclass(frozen=True)
class FeedbackWrite:
    """The conversation's feedback, carrying its stamp as it is now: a new row, or (`replaces`) the update of the
    earlier one (one feedback per conversation, the later replaces it)."""

    conversation_id: int
    agent_id: int
    visitor_id: str
    rating: str
    comment: str
    given_at: datetime
    stamp: Arm | None
    replaces: int | None


def decide_feedback(state: State, report: FeedbackReport) -> FeedbackWrite:
    """Feedback on an existing conversation of the visitor (404, 409); it replaces the conversation's earlier one."""
    conversation = existing_conversation(state, report.external_id, report.visitor_id)
    return FeedbackWrite(conversation.id, state.agent.id, report.visitor_id, report.rating, report.comment,
                         report.given_at, conversation.stamp, state.earlier_feedback_id)


def feedback_json(feedback_id: int, external_id: str, write: FeedbackWrite) -> dict[str, Any]:
    return {"feedback_id": feedback_id, "conversation_id": external_id, "rating": write.rating,
            "comment": write.comment, "given_at": write.given_at.isoformat(), "variant": variant_json(write.stamp)}


def persona_answer(state: State, external_id: str) -> dict[str, Any]:
    """GET …/persona: the conversation's effective persona and system prompt (404 when there is none)."""
    conversation = existing_conversation(state, external_id)
    return {"conversation_id": external_id, "visitor_id": conversation.visitor_id,
            **stamp_json(state.agent, conversation.stamp)}


def assignment_answer(state: State, visitor_id: str) -> dict[str, Any]:
    """GET …/assignment: the visitor's row in the active experiment, or null; never assigns."""
    if not state.options or state.assigned is None:
        return {"visitor_id": visitor_id, "assignment": None}
    arm = assigned_arm(state.options, state.assigned)
    return {"visitor_id": visitor_id, "assignment": {
        "experiment": experiment_json(arm), "variant": variant_json(arm),
        "assigned_at": state.assigned.assigned_at.isoformat()}}
