"""The runtime's reports (SPEC §6): messages, leads, and the read-only persona and assignment lookups."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (MAX_DB_ID, MESSAGE_ROLES, Agent, ApiKey, Conversation, ExperimentAssignment, Lead, Message, UTCDateTime,
                      Workspace, json_text, seconds_between, utcnow)
from webapp.services.workspace import api_keys
from webapp.services.runtime import assignment
from webapp.services import validation
from webapp.services.runtime.assignment import Arm
from webapp.services.errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationError
from webapp.services.runtime.persona import effective_persona, system_prompt


C, M = Conversation.__table__.c, Message.__table__.c
AGENT = (sa.select(Agent.id, Agent.persona_name, Agent.persona_tone, Agent.instructions, Workspace.name)
         .join(Workspace, Workspace.id == Agent.workspace_id)
         .where(Agent.id == sa.bindparam("agent_id"), Agent.workspace_id == sa.bindparam("workspace_id")))
K, AG, W, A = ApiKey.__table__.c, Agent.__table__.c, Workspace.__table__.c, ExperimentAssignment.__table__.c
E, V = assignment.E, assignment.V
_ARMS = assignment.ACTIVE_ARMS.order_by(None).subquery("arms")
# Authentication, the agent (only if the key's workspace owns it) and its active experiment's arms: one query,
# one row per arm (one row with null arms when no experiment is active), run on every runtime request.
AUTHENTICATE = (
    sa.select(K.id, K.workspace_id, K.revoked_at, K.last_used_at, AG.id.label("agent_id"), AG.persona_name,
              AG.persona_tone, AG.instructions, W.name.label("workspace_name"),
              *(c.label(f"arm_{c.name}") for c in _ARMS.c))
    .select_from(ApiKey.__table__)
    .outerjoin(Agent.__table__, sa.and_(AG.id == sa.bindparam("agent_id"), AG.workspace_id == K.workspace_id))
    .outerjoin(Workspace.__table__, W.id == AG.workspace_id)
    .outerjoin(_ARMS, AG.id.is_not(None))
    .where(K.key_hash == sa.bindparam("key_hash"))
    .order_by(_ARMS.c.position)
)
# A stored reply as its text: a replay sends it byte for byte (models.json_text wrote it).
REPLY = sa.cast(M.response, sa.Text).label("response")
# …and what that first delivery said: a replay must say the same (else 409, see _replay).
REPLAY_ROLE, REPLAY_TEXT = M.role.label("replay_role"), M.text.label("replay_text")
# Always one row: the conversation (if any) with its stamp's live fields, a replayed message_id's first response,
# and the visitor's assignment row in the active experiment (step 3).
_ANCHOR = sa.select(sa.literal_column("1").label("one")).subquery("anchor")
LOOKUP = (
    sa.select(C.id, C.visitor_id, C.experiment_id, C.variant_id, C.variant_key, REPLY, REPLAY_ROLE, REPLAY_TEXT,
              E.name.label("experiment_name"), E.kind, V.name.label("variant_name"), V.config,
              A.variant_id.label("assigned_variant_id"), A.variant_key.label("assigned_variant_key"))
    .select_from(_ANCHOR)
    .outerjoin(Conversation.__table__, sa.and_(C.agent_id == sa.bindparam("agent_id"),
                                               C.external_id == sa.bindparam("external_id")))
    .outerjoin(Message.__table__, sa.and_(M.conversation_id == C.id,
                                          M.client_message_id == sa.bindparam("message_id")))
    .outerjoin(assignment.Variant.__table__, sa.and_(V.id == C.variant_id, V.experiment_id == C.experiment_id,
                                                     V.key == C.variant_key))
    .outerjoin(assignment.Experiment.__table__, E.id == V.experiment_id)
    .outerjoin(ExperimentAssignment.__table__, sa.and_(A.experiment_id == sa.bindparam("active_experiment_id"),
                                                       A.visitor_id == sa.bindparam("visitor_id")))
)
# PostgreSQL: a new conversation's writes (assignment row if new, conversation, message) in one statement.
# ON CONFLICT keeps it race-safe: when the assignment or the conversation already exists, what follows it in
# the chain is not inserted and the caller falls back to the statement-by-statement path.
NEW_CONVERSATION_PG = sa.text("""
WITH a AS (
    INSERT INTO experiment_assignments (agent_id, experiment_id, variant_id, variant_key, visitor_id, assigned_at)
    SELECT :agent_id, CAST(:experiment_id AS INTEGER), CAST(:variant_id AS INTEGER), CAST(:variant_key AS TEXT),
           :visitor_id, :assigned_at
    WHERE CAST(:assign AS BOOLEAN)
    ON CONFLICT (experiment_id, visitor_id) DO NOTHING
    RETURNING id
), c AS (
    INSERT INTO conversations (agent_id, external_id, visitor_id, experiment_id, variant_id, variant_key,
                               started_at, last_message_at, session_seconds, visitor_messages, lead_count)
    SELECT :agent_id, :external_id, :visitor_id, CAST(:experiment_id AS INTEGER), CAST(:variant_id AS INTEGER),
           CAST(:variant_key AS TEXT), :sent_at, :sent_at, 0, :visitor_messages, 0
    WHERE NOT CAST(:assign AS BOOLEAN) OR EXISTS (SELECT 1 FROM a)
    ON CONFLICT (agent_id, external_id) DO NOTHING
    RETURNING id
), m AS (
    INSERT INTO messages (conversation_id, role, text, sent_at, variant_id, client_message_id, response)
    SELECT c.id, :role, :text, :sent_at, CAST(:variant_id AS INTEGER), :message_id, CAST(:response AS JSON) FROM c
    RETURNING id
)
SELECT (SELECT id FROM a) AS assignment_id, (SELECT id FROM c) AS conversation_id, (SELECT id FROM m) AS message_id
""").bindparams(sa.bindparam("assigned_at", type_=UTCDateTime()), sa.bindparam("sent_at", type_=UTCDateTime()),
                sa.bindparam("response", type_=sa.JSON()))
_AT = sa.bindparam("sent_at", type_=Conversation.started_at.type)
_UNSTAMPED = C.variant_id.is_(None)
_STARTED = sa.case((C.started_at > _AT, _AT), else_=C.started_at)
_LAST = sa.case((C.last_message_at < _AT, _AT), else_=C.last_message_at)
_STAMP_VARIANT = sa.bindparam("stamp_variant_id", type_=sa.Integer)
# Step 5 on an existing conversation, atomically: stamp only if unstamped; started/last = min/max of sent_at;
# the counters the results read move in the same statement. Only stamped visitor messages count: what a
# visitor did before being assigned is not an outcome of the variant.
TOUCH_CONVERSATION = (
    sa.update(Conversation.__table__)
    .where(C.agent_id == sa.bindparam("where_agent_id"), C.external_id == sa.bindparam("where_external_id"))
    .values(started_at=_STARTED,
            last_message_at=_LAST,
            session_seconds=seconds_between(_STARTED, _LAST),
            visitor_messages=C.visitor_messages + sa.case(
                (sa.or_(C.variant_id.is_not(None), _STAMP_VARIANT.is_not(None)),
                 sa.bindparam("visitor_increment", type_=sa.Integer)), else_=0),
            experiment_id=sa.case((_UNSTAMPED, sa.bindparam("stamp_experiment_id", type_=sa.Integer)),
                                  else_=C.experiment_id),
            variant_id=sa.case((_UNSTAMPED, _STAMP_VARIANT), else_=C.variant_id),
            variant_key=sa.case((_UNSTAMPED, sa.bindparam("stamp_variant_key", type_=sa.String)),
                                else_=C.variant_key))
    .returning(C.id, C.visitor_id, C.experiment_id, C.variant_id, C.variant_key)
)
REPLAYED = sa.select(REPLY, REPLAY_ROLE, REPLAY_TEXT).where(M.conversation_id == sa.bindparam("conversation_id"),
                                       M.client_message_id == sa.bindparam("message_id"))


@dataclass(frozen=True)
class LeadResult:
    body: dict[str, Any]
    replayed: bool


@dataclass(frozen=True)
class MessageResult:
    text: str  # the reply serialised once (models.json_text): stored with the message, sent as it is
    replayed: bool

    @property
    def body(self) -> dict[str, Any]:
        """The reply as a dict, parsed only when asked: the API sends `text`, a replay the stored text untouched."""
        return json.loads(self.text)


@dataclass(frozen=True)
class RuntimeAgent:
    id: int
    persona_name: str
    persona_tone: str
    instructions: str
    workspace_name: str


@dataclass(frozen=True)
class ActiveArm:
    """A variant of the agent's active experiment, as the assignment functions read it."""

    experiment_id: int
    experiment_name: str
    kind: str
    id: int
    key: str
    variant_name: str
    config: dict[str, Any] | None
    weight: int


@dataclass(frozen=True)
class RuntimeAuth:
    """A live key's workspace and, for the agent in the path, the agent (None: not this workspace's) and its
    active experiment's arms in position order, all read by one query."""

    key_id: int
    workspace_id: int
    agent_id: int | None
    agent: RuntimeAgent | None
    arms: list[ActiveArm]


def authenticate(token: str | None, agent_id: int | None = None) -> RuntimeAuth:
    """The live key for a bearer token, with the path's agent and active arms; Unauthorized if missing,
    unknown or revoked. No cache: a revoked key or a stopped experiment takes effect on the next request."""
    if not token:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
    in_range = agent_id is not None and 1 <= agent_id <= MAX_DB_ID
    rows = assignment.execute(AUTHENTICATE, {"key_hash": api_keys.hash_key(token),
                                             "agent_id": agent_id if in_range else None}).all()
    auth = auth_from_rows(rows, agent_id)
    api_keys.touch(auth.key_id, rows[0].last_used_at)
    return auth


def auth_from_rows(rows: list[Any], agent_id: int | None) -> RuntimeAuth:
    """The RuntimeAuth of AUTHENTICATE's rows (one per active arm); Unauthorized for an unknown or revoked key."""
    if not rows:
        raise Unauthorized("Invalid API key.")
    first = rows[0]
    if first.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.")
    agent = None
    if first.agent_id is not None:
        agent = RuntimeAgent(first.agent_id, first.persona_name, first.persona_tone, first.instructions,
                             first.workspace_name)
    arms = [ActiveArm(r.arm_experiment_id, r.arm_experiment_name, r.arm_kind, r.arm_id, r.arm_key,
                      r.arm_variant_name, r.arm_config, r.arm_weight)
            for r in rows if r.arm_experiment_id is not None]
    return RuntimeAuth(first.id, first.workspace_id, agent_id, agent, arms)


def owned_agent(workspace_id: int, agent_id: int, auth: RuntimeAuth | None = None) -> RuntimeAgent:
    """The agent if the key's workspace owns it; anything else is a 404 (ids never leak)."""
    if auth is not None and auth.agent_id == agent_id and auth.workspace_id == workspace_id:
        if auth.agent is None:
            raise NotFound("No such agent.")
        return auth.agent
    row = None
    if 1 <= agent_id <= MAX_DB_ID:
        row = assignment.execute(AGENT, {"agent_id": agent_id, "workspace_id": workspace_id}).first()
    if row is None:
        raise NotFound("No such agent.")
    return RuntimeAgent(*row)


def _arms(agent_id: int, auth: RuntimeAuth | None) -> list[Any]:
    """The active experiment's arms: read with the key when the route authenticated, else now."""
    if auth is not None and auth.agent_id == agent_id:
        return auth.arms
    return assignment.active_arms(agent_id)


def conversation_ids(data: dict[str, Any], errors: dict[str, str]) -> tuple[str, str]:
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


@dataclass(frozen=True)
class MessageReport:
    """A validated POST …/messages body."""

    visitor_id: str
    external_id: str
    role: str
    text: str
    sent_at: datetime
    message_id: str | None


def parse_message(data: dict[str, Any]) -> MessageReport:
    """Validate a message body (SPEC §6); ValidationError names every bad field."""
    errors: dict[str, str] = {}
    visitor_id, external_id = conversation_ids(data, errors)
    role = data.get("role")
    if role not in MESSAGE_ROLES:
        errors["role"] = "role is required and must be 'visitor' or 'agent'."
    text = validation.runtime_text(data.get("text"), "text", errors)
    sent_at = validation.timestamp(data.get("sent_at"), "sent_at", errors) or utcnow()
    message_id = validation.optional_opaque_id(data, "message_id", errors)
    if errors:
        raise ValidationError(errors)
    return MessageReport(visitor_id, external_id, role, text, sent_at, message_id)


def report_message(token: str | None, agent_id: int, data: dict[str, Any]) -> MessageResult:
    """POST …/messages end to end: authenticate, validate, record (SPEC §5–§6).

    The common cases (a new conversation, a message in a stamped conversation, a replay) run on the hot path
    (`hot_path.py`: two round trips, no ORM); everything else, with the key already checked there, runs
    `record_message` statement by statement. A bad key answers 401 before a bad body.
    """
    try:
        report = parse_message(data)
    except ValidationError:
        authenticate(token, agent_id)
        raise
    from webapp.services.runtime import hot_path

    outcome = hot_path.record_message(token, agent_id, report)
    if isinstance(outcome, MessageResult):
        return outcome
    return _record_message(outcome.workspace_id, agent_id, report, outcome)


def record_message(workspace_id: int, agent_id: int, data: dict[str, Any],
                   auth: RuntimeAuth | None = None) -> MessageResult:
    """Record one message (SPEC §5–§6); visitor messages assign; a replayed message_id answers the first body.

    `auth`: what the route's authentication already read (agent, active arms), saving those queries.
    """
    return _record_message(workspace_id, agent_id, parse_message(data), auth)


def _record_message(workspace_id: int, agent_id: int, report: MessageReport,
                    auth: RuntimeAuth | None) -> MessageResult:
    """The reference path, statement by statement on the session; the hot path hands over what it does not do."""
    visitor_id, external_id, role, text, sent_at, message_id = (
        report.visitor_id, report.external_id, report.role, report.text, report.sent_at, report.message_id)
    agent = owned_agent(workspace_id, agent_id, auth)
    arms = _arms(agent_id, auth) if role == "visitor" else []

    found = assignment.execute(LOOKUP, {
        "agent_id": agent_id, "external_id": external_id, "message_id": message_id, "visitor_id": visitor_id,
        "active_experiment_id": arms[0].experiment_id if arms else None}).one()
    exists = found.id is not None
    arm = None
    if exists:
        check_visitor(found.visitor_id, visitor_id, external_id)
        if found.response is not None:
            return _replay(found, report)
        arm = _stamp(found)
    chosen = None  # a fresh bucketing whose assignment row is still to be inserted
    if arm is None:
        arm, chosen = choose_arm(arms, found.assigned_variant_id, found.assigned_variant_key, visitor_id)
    message_id = message_id or uuid.uuid4().hex

    if not exists and db.session.get_bind().dialect.name == "postgresql":
        body = _message_body(external_id, message_id, agent, arm)
        row = assignment.execute(NEW_CONVERSATION_PG, {
            "agent_id": agent_id, "visitor_id": visitor_id, "external_id": external_id,
            "experiment_id": arm.experiment_id if arm else None, "variant_id": arm.variant_id if arm else None,
            "variant_key": arm.variant_key if arm else None, "assign": chosen is not None, "assigned_at": sent_at,
            "sent_at": sent_at, "visitor_messages": int(role == "visitor" and arm is not None), "role": role,
            "text": text,
            "message_id": message_id, "response": body}).one()
        if row.message_id is not None:
            db.session.commit()
            return MessageResult(json_text(body), False)
        # A concurrent request got there first (nothing after the conflict was written): go step by step.
        if chosen is not None and row.assignment_id is None:
            arm = assignment.existing_assignment(arms, visitor_id)
        chosen = None

    if chosen is not None:
        arm = assignment.record_assignment(agent_id, visitor_id, arms, chosen, sent_at)
    conversation_id = None
    if not exists:
        conversation_id = assignment.insert_ignoring_conflict(
            Conversation, new_conversation_values(agent_id, report, arm, sent_at), ["agent_id", "external_id"])
    if conversation_id is None:
        # An existing conversation (or one a concurrent request just created): stamp it unless already
        # stamped, and widen its time span; the returned stamp is the truth.
        conversation_id, arm = _touch_conversation(agent_id, external_id, visitor_id, arm, sent_at, role)

    body = _message_body(external_id, message_id, agent, arm)
    inserted = assignment.insert_ignoring_conflict(Message, {
        "conversation_id": conversation_id, "role": role, "text": text, "sent_at": sent_at,
        "variant_id": arm.variant_id if arm else None, "client_message_id": message_id, "response": body,
    }, ["conversation_id", "client_message_id"])
    if inserted is None:
        # A concurrent delivery of the same message_id won: answer its body and write nothing.
        db.session.rollback()
        first = assignment.execute(REPLAYED, {"conversation_id": conversation_id, "message_id": message_id}).one()
        return _replay(first, report)
    db.session.commit()
    return MessageResult(json_text(body), False)


def _replay(first: Any, report: MessageReport) -> MessageResult:
    """The first delivery's reply, as stored, when `report` repeats that delivery (its role and text).

    A message_id already used in the conversation for another role or text is a client's bug (a counter that
    restarted, a reused id), not a retry: answering the first reply would silently drop the new message, so it is
    a 409 naming message_id. `sent_at` is not compared: a retry that omits it gets a new default."""
    if first.replay_role != report.role or (first.replay_text or "") != report.text:
        raise Conflict(f"message_id '{report.message_id}' was already used in conversation '{report.external_id}' "
                       "for a different message.",
                       {"message_id": "Already used in this conversation for a message with another role or text: "
                                      "send a new message_id for a new message."})
    return MessageResult(first.response, True)


def _stamp(found: Any) -> Arm | None:
    """Step 1 from the lookup row: the conversation's stamp, with live fields unless the experiment is deleted."""
    return stamp_arm(found.experiment_id, found.variant_id, found.variant_key, found.experiment_name, found.kind,
                     found.variant_name, found.config)


def stamp_arm(experiment_id: int | None, variant_id: int | None, variant_key: str | None,
              experiment_name: str | None, kind: str | None, variant_name: str | None,
              config: dict[str, Any] | None) -> Arm | None:
    """A conversation's stamp as an Arm: None when unstamped, names and config only while the experiment exists
    (`kind` is null once it is deleted)."""
    if experiment_id is None or variant_id is None:
        return None
    if kind is None:
        return Arm(experiment_id, variant_id, variant_key or "")
    return Arm(experiment_id, variant_id, variant_key, experiment_name, kind, variant_name, config)


def choose_arm(arms: list[Any], assigned_variant_id: int | None, assigned_variant_key: str | None,
               visitor_id: str) -> tuple[Arm | None, Any]:
    """Steps 2–4 for an unstamped conversation: (the arm, the bucketed arm row whose assignment is still to be
    inserted, or None). No active arms: (None, None)."""
    if not arms:
        return None, None
    if assigned_variant_id is not None:  # step 3
        return assignment.assigned_arm(arms, assigned_variant_id, assigned_variant_key), None
    chosen = assignment.bucket(arms, visitor_id)  # step 4
    return assignment.arm_of(chosen), chosen


def stamp_values(arm: Arm | None) -> dict[str, Any]:
    """The stamp columns of a conversation (all null when unstamped)."""
    return {"experiment_id": arm.experiment_id if arm else None, "variant_id": arm.variant_id if arm else None,
            "variant_key": arm.variant_key if arm else None}


def new_conversation_values(agent_id: int, report: MessageReport, arm: Arm | None, sent_at: Any) -> dict[str, Any]:
    """A new conversation's row for its first message (`sent_at` as the caller binds it); only a stamped visitor
    message counts towards the results."""
    return {"agent_id": agent_id, "external_id": report.external_id, "visitor_id": report.visitor_id,
            **stamp_values(arm), "started_at": sent_at, "last_message_at": sent_at, "session_seconds": 0.0,
            "visitor_messages": int(report.role == "visitor" and arm is not None), "lead_count": 0}


def _message_body(external_id: str, message_id: str, agent: RuntimeAgent, arm: Arm | None) -> dict[str, Any]:
    return {"conversation_id": external_id, "message_id": message_id,
            "experiment": experiment_json(arm), "variant": variant_json(arm), **_persona_json(agent, arm)}


def check_visitor(owner: str, visitor_id: str, external_id: str) -> None:
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
    check_visitor(row.visitor_id, visitor_id, external_id)
    if arm is None or row.variant_id != arm.variant_id:
        arm = assignment.stamped_arm(row.experiment_id, row.variant_id, row.variant_key)
    return row.id, arm


def visitor_conversation(workspace_id: int, agent_id: int, external_id: str, visitor_id: str,
                         auth: RuntimeAuth | None = None) -> Conversation:
    """An existing conversation of the key's agent (404 otherwise) that belongs to `visitor_id` (409 otherwise):
    what a lead or a feedback is recorded on."""
    owned_agent(workspace_id, agent_id, auth)
    conversation = db.session.scalar(sa.select(Conversation).where(
        Conversation.agent_id == agent_id, Conversation.external_id == external_id))
    if conversation is None:
        raise NotFound(f"No conversation '{external_id}' for this agent.",
                       {"conversation_id": "No such conversation: report a message first."})
    check_visitor(conversation.visitor_id, visitor_id, external_id)
    return conversation


def record_lead(workspace_id: int, agent_id: int, data: dict[str, Any],
                auth: RuntimeAuth | None = None) -> LeadResult:
    """Record a lead of an existing conversation of the visitor; it carries the conversation's stamp.

    With an `idempotency_key`, a retry of the same lead answers the first one and writes nothing.
    """
    errors: dict[str, str] = {}
    visitor_id, external_id = conversation_ids(data, errors)
    fields = data.get("fields")
    if fields is None:
        fields = {}
    elif not isinstance(fields, dict):
        errors["fields"] = "fields must be a JSON object."
    else:  # bounded depth before anything recurses into it; no NUL (PostgreSQL text cannot store it)
        validation.json_value(fields, "fields", errors, label="fields", refuse_nul=True)
    captured_at = validation.timestamp(data.get("captured_at"), "captured_at", errors) or utcnow()
    key = validation.optional_opaque_id(data, "idempotency_key", errors)
    if errors:
        raise ValidationError(errors)
    conversation = visitor_conversation(workspace_id, agent_id, external_id, visitor_id, auth)
    arm = assignment.stamped_arm(conversation.experiment_id, conversation.variant_id, conversation.variant_key)
    if key is not None:
        earlier = _lead_by_key(conversation.id, key, fields)
        if earlier is not None:
            return LeadResult({"lead_id": earlier, "variant": variant_json(arm)}, True)
    lead_id = assignment.insert_ignoring_conflict(Lead, {
        "agent_id": agent_id, "conversation_id": conversation.id, "visitor_id": visitor_id, "fields": fields,
        "captured_at": captured_at, "experiment_id": conversation.experiment_id,
        "variant_id": conversation.variant_id, "variant_key": conversation.variant_key, "idempotency_key": key,
    }, ["conversation_id", "idempotency_key"])
    if lead_id is None:
        # A concurrent delivery of the same key won: answer its lead and write nothing.
        db.session.rollback()
        return LeadResult({"lead_id": _lead_by_key(conversation.id, key, fields), "variant": variant_json(arm)}, True)
    if conversation.variant_id is not None:  # a lead before assignment is no outcome of a variant
        assignment.execute(sa.update(Conversation).where(Conversation.id == conversation.id)
                           .values(lead_count=Conversation.lead_count + 1))  # atomic: racing leads both count
    db.session.commit()
    return LeadResult({"lead_id": lead_id, "variant": variant_json(arm)}, False)


def _lead_by_key(conversation_id: int, key: str, fields: dict[str, Any]) -> int | None:
    """The id of the conversation's lead with idempotency `key`, if any, when it has these `fields`; a key already
    used for other fields is a client's bug, not a retry: 409 (`captured_at` is not compared, as for messages)."""
    earlier = db.session.execute(sa.select(Lead.id, Lead.fields).where(
        Lead.conversation_id == conversation_id, Lead.idempotency_key == key)).one_or_none()
    if earlier is None:
        return None
    if _canonical(earlier.fields) != _canonical(fields):  # as JSON: true is not 1, 1.0 is not 1
        raise Conflict(f"idempotency_key '{key}' was already used in this conversation for a lead with other fields.",
                       {"idempotency_key": "Already used in this conversation for a lead with other fields: "
                                           "send a new key for a new lead."})
    return earlier.id


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def path_id(value: str, field: str) -> str:
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


def conversation_persona(workspace_id: int, agent_id: int, conversation_id: str,
                         auth: RuntimeAuth | None = None) -> dict[str, Any]:
    """The effective persona and system prompt of a conversation, read-only."""
    external_id = path_id(conversation_id, "conversation_id")
    agent = owned_agent(workspace_id, agent_id, auth)
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


def visitor_assignment(workspace_id: int, agent_id: int, visitor_id: str,
                       auth: RuntimeAuth | None = None) -> dict[str, Any]:
    """The visitor's assignment in the agent's active experiment, or null; never assigns."""
    visitor_id = path_id(visitor_id, "visitor_id")
    owned_agent(workspace_id, agent_id, auth)
    found = assignment.current_assignment(agent_id, visitor_id, _arms(agent_id, auth))
    if found is None:
        return {"visitor_id": visitor_id, "assignment": None}
    arm, assigned_at = found
    return {"visitor_id": visitor_id, "assignment": {
        "experiment": experiment_json(arm), "variant": variant_json(arm), "assigned_at": assigned_at.isoformat()}}
