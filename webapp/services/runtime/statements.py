"""Every statement the runtime runs, written once as SQLAlchemy Core and compiled once per engine.

The store runs them on the pool's DBAPI connection with the driver's own parameters: a request pays no
SQLAlchemy execution machinery (≈ 0.1–0.2 ms a statement on this stack).

- `read(...)`: the one read of a request — the key by hash (or the trusted caller's workspace), the path's agent
  if that workspace owns it, the active experiment's arms (a row each), and what the endpoint asks about: the
  conversation with its stamp's live fields, a replayed message_id or lead key, the visitor's assignment row.
- The writes: the inserts of an assignment, a conversation, a message and a lead (`ON CONFLICT DO NOTHING` on
  their unique keys, `RETURNING id`: no row back means a concurrent request won), `TOUCH` (stamp if unstamped,
  span, counter), `COUNT_LEAD`, `TOUCH_KEY`. SQLite runs them one by one in one transaction; PostgreSQL runs a
  message's writes as one data-modifying CTE built from the same statements (one round trip), each step
  depending on the previous one's RETURNING, so that nothing after a conflict is written.
"""
from __future__ import annotations

from collections import namedtuple
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.models import (Agent, ApiKey, Conversation, Experiment, ExperimentAssignment, Feedback, GoalEvent, Lead,
                           Message, UTCDateTime, Variant, Workspace, seconds_between)
from webapp.services.experiments.experiments import active_experiment_query
from webapp.services.workspace.api_keys import TOUCH as TOUCH_KEY

K, AG, W = ApiKey.__table__.c, Agent.__table__.c, Workspace.__table__.c
E, V, A = Experiment.__table__.c, Variant.__table__.c, ExperimentAssignment.__table__.c
C, M, L, G = Conversation.__table__.c, Message.__table__.c, Lead.__table__.c, GoalEvent.__table__.c
F = Feedback.__table__.c

# The active experiment's arms (SPEC §3: running, latest started), one row each.
ARMS = (
    sa.select(E.id.label("experiment_id"), E.name.label("experiment_name"), E.kind, V.id, V.key,
              V.name.label("variant_name"), V.config, V.weight, V.position)
    .join_from(Experiment.__table__, Variant.__table__, V.experiment_id == E.id)
    .where(E.id == active_experiment_query(sa.bindparam("agent_id")).with_only_columns(Experiment.id)
           .scalar_subquery())
    .subquery("arms")
)
_STAMP_V, _STAMP_E = Variant.__table__.alias("stamp_v"), Experiment.__table__.alias("stamp_e")
AGENT_COLUMNS = (AG.id.label("agent_id"), AG.persona_name, AG.persona_tone, AG.instructions,
                 W.name.label("workspace_name"))


def _principal(by_key: bool) -> sa.Select:
    """The read's first table: the key by its hash, or a trusted caller's workspace; then the path's agent, only
    if that workspace owns it, and the active arms."""
    if by_key:
        base = (sa.select(K.id.label("key_id"), K.workspace_id, K.revoked_at, K.last_used_at, *AGENT_COLUMNS)
                .select_from(ApiKey.__table__)
                .outerjoin(Agent.__table__, sa.and_(AG.id == sa.bindparam("agent_id"),
                                                    AG.workspace_id == K.workspace_id))
                .where(K.key_hash == sa.bindparam("key_hash")))
    else:
        workspaces = Workspace.__table__.alias("caller")
        base = (sa.select(workspaces.c.id.label("workspace_id"), *AGENT_COLUMNS)
                .select_from(workspaces)
                .outerjoin(Agent.__table__, sa.and_(AG.id == sa.bindparam("agent_id"),
                                                    AG.workspace_id == workspaces.c.id))
                .where(workspaces.c.id == sa.bindparam("workspace_id")))
    return (base.outerjoin(Workspace.__table__, W.id == AG.workspace_id)
            .outerjoin(ARMS, AG.id.is_not(None))
            .add_columns(*(c.label(f"arm_{c.name}") for c in ARMS.c))
            .order_by(ARMS.c.position))


def with_conversation(select: sa.Select) -> sa.Select:
    """The conversation `external_id` of the path's agent, with its stamp and the stamp's live fields (none once
    the experiment has been deleted: stamps are plain columns, the variant row is gone)."""
    return (select
            .add_columns(C.id.label("conversation_id"), C.visitor_id.label("conversation_visitor_id"),
                         C.experiment_id.label("stamp_experiment_id"), C.variant_id.label("stamp_variant_id"),
                         C.variant_key.label("stamp_variant_key"), _STAMP_E.c.name.label("stamp_experiment_name"),
                         _STAMP_E.c.kind.label("stamp_kind"), _STAMP_V.c.name.label("stamp_variant_name"),
                         _STAMP_V.c.config.label("stamp_config"))
            .outerjoin(Conversation.__table__, sa.and_(AG.id.is_not(None), C.agent_id == AG.id,
                                                       C.external_id == sa.bindparam("external_id")))
            .outerjoin(_STAMP_V, sa.and_(_STAMP_V.c.id == C.variant_id, _STAMP_V.c.experiment_id == C.experiment_id,
                                         _STAMP_V.c.key == C.variant_key))
            .outerjoin(_STAMP_E, _STAMP_E.c.id == _STAMP_V.c.experiment_id))


def with_earlier_message(select: sa.Select) -> sa.Select:
    """The conversation's message with the client's `message_id`: what it said, and its reply as stored text (a
    replay sends it byte for byte)."""
    return (select
            .add_columns(M.role.label("earlier_role"), M.text.label("earlier_text"),
                         sa.cast(M.response, sa.Text).label("earlier_reply"))
            .outerjoin(Message.__table__, sa.and_(M.conversation_id == C.id,
                                                  M.client_message_id == sa.bindparam("message_id"))))


def with_earlier_lead(select: sa.Select) -> sa.Select:
    """The conversation's lead with the client's `idempotency_key`."""
    return (select.add_columns(L.id.label("earlier_lead_id"), L.fields.label("earlier_lead_fields"))
            .outerjoin(Lead.__table__, sa.and_(L.conversation_id == C.id,
                                               L.idempotency_key == sa.bindparam("idempotency_key"))))


def with_earlier_event(select: sa.Select) -> sa.Select:
    """The conversation's goal event with the client's `event_id`."""
    return (select.add_columns(G.name.label("earlier_event_name"), G.occurred_at.label("earlier_event_at"),
                               G.variant_id.label("earlier_event_variant_id"))
            .outerjoin(GoalEvent.__table__, sa.and_(G.conversation_id == C.id,
                                                    G.event_id == sa.bindparam("event_id"))))


def with_earlier_feedback(select: sa.Select) -> sa.Select:
    """The conversation's feedback (at most one), which a new one replaces."""
    return (select.add_columns(F.id.label("earlier_feedback_id"))
            .outerjoin(Feedback.__table__, F.conversation_id == C.id))


def with_assignment(select: sa.Select) -> sa.Select:
    """The visitor's assignment row in the active experiment (step 3)."""
    return (select.add_columns(A.variant_id.label("assigned_variant_id"), A.variant_key.label("assigned_variant_key"),
                               A.assigned_at)
            .outerjoin(ExperimentAssignment.__table__, sa.and_(A.experiment_id == ARMS.c.experiment_id,
                                                               A.visitor_id == sa.bindparam("visitor_id"))))


# What each endpoint reads besides the principal, the agent and the arms.
READS = {
    "auth": (),
    "message": (with_conversation, with_earlier_message, with_assignment),
    "lead": (with_conversation, with_earlier_lead),
    "event": (with_conversation, with_earlier_event),
    "feedback": (with_conversation, with_earlier_feedback),
    "persona": (with_conversation,),
    "assignment": (with_assignment,),
}
JSON_COLUMNS = {"arm_config", "stamp_config", "earlier_lead_fields"}  # earlier_reply stays text
TIME_COLUMNS = {"revoked_at", "last_used_at", "assigned_at", "earlier_event_at"}


# --- Writes -------------------------------------------------------------------------------------------------------

ASSIGNMENT_COLUMNS = ["agent_id", "experiment_id", "variant_id", "variant_key", "visitor_id", "assigned_at"]
CONVERSATION_COLUMNS = ["agent_id", "external_id", "visitor_id", "experiment_id", "variant_id", "variant_key",
                        "started_at", "last_message_at", "session_seconds", "visitor_messages", "lead_count"]
MESSAGE_COLUMNS = ["conversation_id", "role", "text", "sent_at", "variant_id", "client_message_id", "response"]
LEAD_COLUMNS = ["agent_id", "conversation_id", "visitor_id", "fields", "captured_at", "experiment_id", "variant_id",
                "variant_key", "idempotency_key"]
EVENT_COLUMNS = ["agent_id", "conversation_id", "visitor_id", "name", "occurred_at", "experiment_id", "variant_id",
                 "variant_key", "event_id"]
FEEDBACK_COLUMNS = ["agent_id", "conversation_id", "visitor_id", "rating", "comment", "given_at", "experiment_id",
                    "variant_id", "variant_key"]
UNIQUE = {"experiment_assignments": ["experiment_id", "visitor_id"], "conversations": ["agent_id", "external_id"],
          "messages": ["conversation_id", "client_message_id"], "leads": ["conversation_id", "idempotency_key"],
          "goal_events": ["conversation_id", "event_id"], "feedback": ["conversation_id"]}

_AT = sa.bindparam("sent_at", type_=UTCDateTime())
_STARTED = sa.case((C.started_at > _AT, _AT), else_=C.started_at)
_LAST = sa.case((C.last_message_at < _AT, _AT), else_=C.last_message_at)
_UNSTAMPED = C.variant_id.is_(None)


def _stamp_if_unstamped(column: sa.Column, name: str) -> sa.Case:
    return sa.case((_UNSTAMPED, sa.cast(sa.bindparam(name), column.type)), else_=column)


# Step 5 and the counters on an existing conversation, atomically: stamp only if still unstamped; started/last =
# min/max of the message times, session_seconds their difference; the visitor-message count the results read.
# RETURNING the stamp it leaves: a write that decided on "unstamped" checks it before committing.
TOUCH = (
    sa.update(Conversation.__table__)
    .where(C.id == sa.bindparam("conversation_id"))
    .values(started_at=_STARTED, last_message_at=_LAST, session_seconds=seconds_between(_STARTED, _LAST),
            visitor_messages=C.visitor_messages + sa.cast(sa.bindparam("visitor_increment"), sa.Integer),
            experiment_id=_stamp_if_unstamped(C.experiment_id, "stamp_experiment_id"),
            variant_id=_stamp_if_unstamped(C.variant_id, "stamp_variant_id"),
            variant_key=_stamp_if_unstamped(C.variant_key, "stamp_variant_key"))
    .returning(C.variant_id)
)
# A feedback replacing the conversation's earlier one: everything but its id and conversation, the stamp as it is now.
REPLACE_FEEDBACK = sa.update(Feedback.__table__).where(F.id == sa.bindparam("feedback_id")).returning(F.id)
# A stamped conversation's lead count; atomic, so that racing leads both count.
COUNT_LEAD = (sa.update(Conversation.__table__).where(C.id == sa.bindparam("conversation_id"))
              .values(lead_count=C.lead_count + 1))


def insert(table: sa.Table, dialect: str) -> sa.Insert:
    """INSERT … ON CONFLICT (its unique key) DO NOTHING RETURNING id, for SQLite or PostgreSQL."""
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=UNIQUE[table.name]).returning(table.c.id)


def _insert_step(table: sa.Table, columns: list[str], name: str, condition: Any = None,
                 conversation: Any = None) -> sa.CTE:
    """A PostgreSQL CTE step: `insert(table)` of the bound values, only if `condition` (the previous step returned
    a row); `conversation`: the column that gives conversation_id (the previous step's new id)."""
    values = [conversation if (c == "conversation_id" and conversation is not None)
              else sa.cast(sa.bindparam(c), table.c[c].type) for c in columns]
    rows = sa.select(*values)
    if condition is not None:
        rows = rows.where(condition)
    return insert(table, "postgresql").from_select(columns, rows).cte(name)


def _exists(step: sa.CTE) -> sa.Exists:
    return sa.exists(sa.select(step.c.id))


@cache
def message_cte(new_conversation: bool, new_assignment: bool) -> sa.Select:
    """PostgreSQL: a message's writes in one statement, in the order rules.MessageWrite lists them.

    A new conversation: [assignment →] conversation → message. An existing one: [assignment →] message → TOUCH,
    so that a racing replay of the same message_id (its insert meets the unique key) moves no counter. Answers the
    ids each step returned (null: stopped there) and the stamp TOUCH left."""
    tables = Experiment.metadata.tables
    step = _insert_step(tables["experiment_assignments"], ASSIGNMENT_COLUMNS, "a") if new_assignment else None
    after = _exists(step) if step is not None else None
    if new_conversation:
        c = _insert_step(tables["conversations"], CONVERSATION_COLUMNS, "c", after)
        m = _insert_step(tables["messages"], MESSAGE_COLUMNS, "m", conversation=c.c.id)
        touched = None
    else:
        m = _insert_step(tables["messages"], MESSAGE_COLUMNS, "m", after)
        touched = TOUCH.where(_exists(m)).returning(C.id).cte("t")
    columns = [sa.select(m.c.id).scalar_subquery().label("message_id")]
    if touched is not None:
        columns.append(sa.select(touched.c.variant_id).scalar_subquery().label("stamp_variant_id"))
    return sa.select(*columns)


@cache
def lead_cte(counted: bool) -> sa.Select:
    """PostgreSQL: a lead and, on a stamped conversation, its count, in one statement (the count only if the lead
    was inserted)."""
    lead = _insert_step(Lead.__table__, LEAD_COLUMNS, "l")
    columns = [sa.select(lead.c.id).scalar_subquery().label("lead_id")]
    if counted:
        counted_in = COUNT_LEAD.where(_exists(lead)).returning(C.id).cte("t")
        columns.append(sa.select(counted_in.c.id).scalar_subquery().label("counted"))
    return sa.select(*columns)


@cache
def compiled_read(kind: str, by_key: bool) -> "Compiled":
    select = _principal(by_key)
    for join in READS[kind]:
        select = join(select)
    return Compiled(select, row=namedtuple("Row", [c.name for c in select.selected_columns]))


class Compiled:
    """A Core statement as the driver's SQL with named parameters, compiled once per dialect."""

    _dialects = {"sqlite": sqlite.pysqlite.SQLiteDialect_pysqlite(paramstyle="named"),
                 "postgresql": postgresql.psycopg.PGDialect_psycopg()}

    def __init__(self, statement: sa.Executable, column_keys: list[str] | None = None, row: type | None = None):
        self.statement, self.column_keys, self.row = statement, column_keys, row
        self._sql: dict[str, tuple[str, dict[str, Any]]] = {}

    def sql(self, dialect: str) -> tuple[str, dict[str, Any]]:
        """The SQL, and the values of the parameters the statement binds itself (literals, LIMIT …)."""
        if dialect not in self._sql:
            compiled = self.statement.compile(dialect=self._dialects[dialect], column_keys=self.column_keys)
            fixed = {compiled.bind_names[b]: b.effective_value for b in compiled.binds.values()
                     if not b.required and (b.value is not None or b.callable is not None)}
            self._sql[dialect] = (compiled.string, fixed)
        return self._sql[dialect]

    def execute(self, cursor: Any, dialect: str, params: dict[str, Any]) -> Any:
        sql, fixed = self.sql(dialect)
        cursor.execute(sql, {**fixed, **params} if fixed else params)
        return cursor


def _sqlite_insert(table: str, columns: list[str]) -> Compiled:
    return Compiled(insert(Experiment.metadata.tables[table], "sqlite"), columns)


SQLITE_INSERTS = {
    "assignment": _sqlite_insert("experiment_assignments", ASSIGNMENT_COLUMNS),
    "conversation": _sqlite_insert("conversations", CONVERSATION_COLUMNS),
    "message": _sqlite_insert("messages", MESSAGE_COLUMNS),
    "lead": _sqlite_insert("leads", LEAD_COLUMNS),
    "event": _sqlite_insert("goal_events", EVENT_COLUMNS),
    "feedback": _sqlite_insert("feedback", FEEDBACK_COLUMNS),
}
# PostgreSQL: a goal event is one insert, on the autocommit connection.
POSTGRES_EVENT_INSERT = Compiled(insert(GoalEvent.__table__, "postgresql"), EVENT_COLUMNS)
POSTGRES_FEEDBACK_INSERT = Compiled(insert(Feedback.__table__, "postgresql"), FEEDBACK_COLUMNS)
COMPILED_REPLACE_FEEDBACK = Compiled(REPLACE_FEEDBACK, [c for c in FEEDBACK_COLUMNS if c != "conversation_id"])
COMPILED_TOUCH, COMPILED_COUNT_LEAD, COMPILED_TOUCH_KEY = Compiled(TOUCH), Compiled(COUNT_LEAD), Compiled(TOUCH_KEY)


@cache
def compiled_message_cte(new_conversation: bool, new_assignment: bool) -> Compiled:
    return Compiled(message_cte(new_conversation, new_assignment))


@cache
def compiled_lead_cte(counted: bool) -> Compiled:
    return Compiled(lead_cte(counted))
