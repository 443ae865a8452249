"""The runtime API's use cases (SPEC §5–§6): parse, read, decide, write — the API's one call per endpoint.

Every endpoint has the same shape (`record_message` is the model): `rules.parse_*` validates the body, the store
reads the state in one round trip, `rules.decide_*` says what to write and answer, the store writes it. A write
that meets a unique key a concurrent request took first writes nothing; `_until_written` reads the winner's rows
and the endpoint decides again (the retry then replays, reuses the assignment, or follows up in the conversation).

Errors come in one order on every endpoint: a bad key (401), then bad input (400/422), then an agent the key's
workspace does not own (404), then the rules' conflicts (409).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from webapp.models import utcnow
from webapp.services.errors import Conflict, DomainError
from webapp.services.runtime import rules, store
from webapp.services.runtime.rules import Access, EventReplay, LeadReplay, Replay, State
from webapp.services.runtime.store import Caller, Store

ROUNDS = 4  # a lost race leaves the winner's row for the next read, so a second round ends it; 4 bounds bad luck
T = TypeVar("T")


@dataclass(frozen=True)
class MessageResult:
    text: str  # the reply serialised once (models.json_text): stored with the message, sent as it is
    replayed: bool

    @property
    def body(self) -> dict[str, Any]:
        """The reply as a dict, parsed only when asked: the API sends `text`, a replay the stored text untouched."""
        return json.loads(self.text)


@dataclass(frozen=True)
class LeadResult:
    body: dict[str, Any]
    replayed: bool


EventResult = LeadResult  # an answer as a dict, and whether it replays the first one


def _read(db: Store, kind: str, caller: Caller, agent_id: int, **lookup: Any) -> State:
    """The endpoint's read; 401/404 for a caller that may not act on this agent."""
    access, state = db.read(kind, caller, rules.agent_id_in_range(agent_id), **lookup)
    rules.authorize(access)
    _touch_key(db, access)
    return state


def _touch_key(db: Store, access: Access) -> None:
    now = utcnow()
    if rules.key_touch_due(access.key, now):
        db.touch_key(access.key.id, now)


def authenticate(token: str | None, agent_id: int | None = None) -> Access:
    """Check a bearer token (401 when missing, unknown or revoked); the access it gives. No cache: a revoked key
    takes effect on the next request."""
    if not token:
        raise rules.missing_key()
    with store.connect() as db:
        access, _ = db.read("auth", Caller(token=token), rules.agent_id_in_range(agent_id))
        rules.check_key(access)
        _touch_key(db, access)
    return access


def _parsed(caller: Caller, agent_id: int, parse: Callable[[], T]) -> T:
    """`parse()`, but a bad key answers 401 before bad input does."""
    if caller.by_key and not caller.token:
        raise rules.missing_key()
    try:
        return parse()
    except DomainError:
        if caller.by_key:
            authenticate(caller.token, agent_id)
        raise


def _until_written(caller: Caller, agent_id: int, kind: str, attempt: Callable[[Store, State], T | None],
                   **lookup: Any) -> T:
    """Read, then `attempt(db, state)`: decide and write, the answer; None when a concurrent request took a unique key
    first, so the next round reads the winner's rows and decides again (409 after ROUNDS lost races)."""
    with store.connect() as db:
        for _ in range(ROUNDS):
            answer = attempt(db, _read(db, kind, caller, agent_id, **lookup))
            if answer is not None:
                return answer
    raise Conflict("Concurrent requests kept changing this conversation: send the request again.")


# --- messages: the model of an endpoint ---------------------------------------------------------------------------

def report_message(token: str | None, agent_id: int, data: dict[str, Any]) -> MessageResult:
    """POST …/messages with a bearer token."""
    return _message(Caller(token=token), agent_id, data)


def record_message(workspace_id: int, agent_id: int, data: dict[str, Any]) -> MessageResult:
    """POST …/messages for a trusted in-process caller acting for a workspace (tests, CLI)."""
    return _message(Caller(workspace_id=workspace_id, by_key=False), agent_id, data)


def _message(caller: Caller, agent_id: int, data: dict[str, Any]) -> MessageResult:
    """Record one message (SPEC §5–§6): visitor messages assign; a replayed message_id answers the first reply."""
    report = _parsed(caller, agent_id, lambda: rules.parse_message(data, utcnow()))

    def attempt(db: Store, state: State) -> MessageResult | None:
        decision = rules.decide_message(state, report)
        if isinstance(decision, Replay):
            return MessageResult(decision.reply, True)
        return MessageResult(decision.message.reply, False) if db.write_message(decision) else None

    return _until_written(caller, agent_id, "message", attempt, external_id=report.external_id,
                          message_id=report.message_id, visitor_id=report.visitor_id)


# --- leads --------------------------------------------------------------------------------------------------------

def report_lead(token: str | None, agent_id: int, data: dict[str, Any]) -> LeadResult:
    """POST …/leads with a bearer token."""
    return _lead(Caller(token=token), agent_id, data)


def record_lead(workspace_id: int, agent_id: int, data: dict[str, Any]) -> LeadResult:
    """POST …/leads for a trusted in-process caller acting for a workspace (tests, CLI)."""
    return _lead(Caller(workspace_id=workspace_id, by_key=False), agent_id, data)


def _lead(caller: Caller, agent_id: int, data: dict[str, Any]) -> LeadResult:
    """Record a lead of an existing conversation of the visitor; it carries the conversation's stamp. With an
    `idempotency_key`, a retry of the same lead answers the first one and writes nothing."""
    report = _parsed(caller, agent_id, lambda: rules.parse_lead(data, utcnow()))

    def attempt(db: Store, state: State) -> LeadResult | None:
        decision = rules.decide_lead(state, report)
        stamp = state.conversation.stamp
        if isinstance(decision, LeadReplay):
            return LeadResult(rules.lead_json(decision.lead_id, stamp), True)
        lead_id = db.write_lead(decision)
        return None if lead_id is None else LeadResult(rules.lead_json(lead_id, stamp), False)

    return _until_written(caller, agent_id, "lead", attempt, external_id=report.external_id,
                          idempotency_key=report.idempotency_key)


# --- goal events (SPEC §13) -------------------------------------------------------------------------------------------

def report_event(token: str | None, agent_id: int, data: dict[str, Any]) -> EventResult:
    """POST …/events with a bearer token."""
    return _event(Caller(token=token), agent_id, data)


def record_event(workspace_id: int, agent_id: int, data: dict[str, Any]) -> EventResult:
    """POST …/events for a trusted in-process caller acting for a workspace (tests, CLI)."""
    return _event(Caller(workspace_id=workspace_id, by_key=False), agent_id, data)


def _event(caller: Caller, agent_id: int, data: dict[str, Any]) -> EventResult:
    """Record a goal event of an existing conversation of the visitor; it carries the conversation's stamp. With an
    `event_id`, a retry of the same goal answers the first event and writes nothing."""
    report = _parsed(caller, agent_id, lambda: rules.parse_event(data, utcnow()))

    def attempt(db: Store, state: State) -> EventResult | None:
        decision = rules.decide_event(state, report)
        if isinstance(decision, EventReplay):
            return EventResult(decision.answer, True)
        if db.write_event(decision) is None:
            return None
        return EventResult(rules.event_json(report.external_id, decision.event_id, decision.name,
                                            decision.occurred_at, decision.stamp), False)

    return _until_written(caller, agent_id, "event", attempt, external_id=report.external_id,
                          event_id=report.event_id)


# --- visitor feedback (SPEC §12) --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedbackResult:
    body: dict[str, Any]
    created: bool  # 201 when new, 200 when it replaced the conversation's earlier feedback


def report_feedback(token: str | None, agent_id: int, conversation_id: str, data: dict[str, Any]) -> FeedbackResult:
    """POST …/conversations/{conversation_id}/feedback with a bearer token."""
    return _feedback(Caller(token=token), agent_id, conversation_id, data)


def record_feedback(workspace_id: int, agent_id: int, conversation_id: str, data: dict[str, Any]) -> FeedbackResult:
    """POST …/conversations/{conversation_id}/feedback for a trusted in-process caller (tests, CLI)."""
    return _feedback(Caller(workspace_id=workspace_id, by_key=False), agent_id, conversation_id, data)


def _feedback(caller: Caller, agent_id: int, conversation_id: str, data: dict[str, Any]) -> FeedbackResult:
    """Record (or replace) the visitor's feedback on their existing conversation; it carries the conversation's
    stamp as it is now, as a lead does. One feedback per conversation: a later one replaces it (200)."""
    report = _parsed(caller, agent_id, lambda: rules.parse_feedback(conversation_id, data, utcnow()))

    def attempt(db: Store, state: State) -> FeedbackResult | None:
        decision = rules.decide_feedback(state, report)
        feedback_id = db.write_feedback(decision)
        if feedback_id is None:
            return None
        return FeedbackResult(rules.feedback_json(feedback_id, report.external_id, decision), decision.replaces is None)

    return _until_written(caller, agent_id, "feedback", attempt, external_id=report.external_id)


# --- read-only lookups -----------------------------------------------------------------------------------------------

def conversation_persona(token: str | None, agent_id: int, conversation_id: str) -> dict[str, Any]:
    """GET …/conversations/{id}/persona: the effective persona and system prompt of a conversation."""
    caller = Caller(token=token)
    external_id = _parsed(caller, agent_id, lambda: rules.parse_path_id(conversation_id, "conversation_id"))
    with store.connect() as db:
        state = _read(db, "persona", caller, agent_id, external_id=external_id)
    return rules.persona_answer(state, external_id)


def visitor_assignment(token: str | None, agent_id: int, visitor_id: str) -> dict[str, Any]:
    """GET …/visitors/{id}/assignment: the visitor's assignment in the active experiment, or null; never assigns."""
    caller = Caller(token=token)
    visitor_id = _parsed(caller, agent_id, lambda: rules.parse_path_id(visitor_id, "visitor_id"))
    with store.connect() as db:
        state = _read(db, "assignment", caller, agent_id, visitor_id=visitor_id)
    return rules.assignment_answer(state, visitor_id)
