"""The hot path of POST …/messages (SPEC §5–§6): the common cases on the DBAPI connection, in two round trips.

What the chat runtime sends on every visitor message, so what it costs is what the API costs. The reference
implementation (`runtime._record_message`) runs five to seven statements through the ORM session; here

1. **one read** — `AUTHENTICATE_LOOKUP`: the key (by hash), the path's agent if the key's workspace owns it,
   the active experiment's arms (a row each), and, for this conversation, its stamp with live fields, a replayed
   `message_id`'s first answer and the visitor's assignment row in the active experiment;
2. **one write** — on PostgreSQL a single statement (a data-modifying CTE, run in autocommit: one round trip,
   one transaction); on SQLite `BEGIN IMMEDIATE`, the inserts and `COMMIT` on the in-process connection.

Statements are SQLAlchemy Core built once and compiled once per dialect to the driver's SQL; a request then
pays no SQLAlchemy execution machinery (≈ 0.1–0.2 ms a statement on this stack).

It finishes three cases — a new conversation (steps 2–5), a message in a *stamped* conversation (step 1), a
replay — and raises the same errors as the reference path (401, 404, 409). Anything else (a conversation not yet
stamped, a lost race on a unique key) is handed back: it returns the `RuntimeAuth` it read and the caller runs
the reference path, which re-reads and decides. Race safety is the reference path's: every insert is
`ON CONFLICT DO NOTHING` on the same unique constraints and nothing after a conflict is written (PostgreSQL:
each CTE step depends on the previous one's RETURNING; SQLite: the transaction is rolled back).
Tests run every runtime test through both paths and compare the rows they write.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections import namedtuple
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import (Conversation, Experiment, ExperimentAssignment, Message, MAX_DB_ID, UTCDateTime, Variant,
                      json_text, utcnow)
from webapp.services.workspace import api_keys
from webapp.services.runtime import assignment, service as runtime, wal_checkpoint
from webapp.services.errors import NotFound, Unauthorized
from webapp.services.runtime.service import (AG, AUTHENTICATE, C, M, MessageReport, MessageResult, NEW_CONVERSATION_PG, RuntimeAuth,
                      _ARMS, check_visitor, _message_body)

A = ExperimentAssignment.__table__.c
_SV, _SE = Variant.__table__.alias("sv"), Experiment.__table__.alias("se")

# The read: AUTHENTICATE's rows (one per active arm, position order) widened with the conversation lookup.
AUTHENTICATE_LOOKUP = (
    AUTHENTICATE
    .add_columns(C.id.label("conversation_id"), C.visitor_id.label("conversation_visitor_id"),
                 C.experiment_id.label("stamp_experiment_id"), C.variant_id.label("stamp_variant_id"),
                 C.variant_key.label("stamp_variant_key"), _SE.c.name.label("stamp_experiment_name"),
                 _SE.c.kind.label("stamp_kind"), _SV.c.name.label("stamp_variant_name"),
                 _SV.c.config.label("stamp_config"), runtime.REPLY, runtime.REPLAY_ROLE, runtime.REPLAY_TEXT,
                 A.variant_id.label("assigned_variant_id"), A.variant_key.label("assigned_variant_key"))
    .outerjoin(Conversation.__table__, sa.and_(AG.id.is_not(None), C.agent_id == AG.id,
                                               C.external_id == sa.bindparam("external_id")))
    .outerjoin(Message.__table__, sa.and_(M.conversation_id == C.id,
                                          M.client_message_id == sa.bindparam("message_id")))
    .outerjoin(_SV, sa.and_(_SV.c.id == C.variant_id, _SV.c.experiment_id == C.experiment_id,
                            _SV.c.key == C.variant_key))
    .outerjoin(_SE, _SE.c.id == _SV.c.experiment_id)
    .outerjoin(ExperimentAssignment.__table__, sa.and_(A.experiment_id == _ARMS.c.experiment_id,
                                                       A.visitor_id == sa.bindparam("visitor_id")))
)
_JSON_COLUMNS = {"arm_config", "stamp_config"}  # the response stays text: replayed as stored
_TIME_COLUMNS = {"revoked_at", "last_used_at"}

# PostgreSQL: a message in a stamped conversation, in one statement. The message goes first and the
# conversation's span and counter move only if it was inserted: a racing replay of the same message_id changes
# nothing. A stamp never changes once set, so the body computed from the read stays true.
FOLLOW_UP_PG = sa.text("""
WITH m AS (
    INSERT INTO messages (conversation_id, role, text, sent_at, variant_id, client_message_id, response)
    VALUES (:conversation_id, :role, :text, :sent_at, CAST(:variant_id AS INTEGER), :message_id,
            CAST(:response AS JSON))
    ON CONFLICT (conversation_id, client_message_id) DO NOTHING
    RETURNING id
), t AS (
    UPDATE conversations
    SET started_at = LEAST(started_at, :sent_at),
        last_message_at = GREATEST(last_message_at, :sent_at),
        session_seconds = EXTRACT(EPOCH FROM (GREATEST(last_message_at, :sent_at)
                                              - LEAST(started_at, :sent_at)))::float,
        visitor_messages = visitor_messages + :visitor_increment
    WHERE id = :conversation_id AND EXISTS (SELECT 1 FROM m)
    RETURNING id
)
SELECT (SELECT id FROM m) AS message_id, (SELECT id FROM t) AS conversation_id
""")


def _sqlite_insert(table: sa.Table, conflict: list[str]) -> sa.Insert:
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id)


INSERT_ASSIGNMENT = _sqlite_insert(ExperimentAssignment.__table__, ["experiment_id", "visitor_id"])
INSERT_CONVERSATION = _sqlite_insert(Conversation.__table__, ["agent_id", "external_id"])
INSERT_MESSAGE = _sqlite_insert(Message.__table__, ["conversation_id", "client_message_id"])
_ASSIGNMENT_KEYS = ["agent_id", "experiment_id", "variant_id", "variant_key", "visitor_id", "assigned_at"]
_CONVERSATION_KEYS = ["agent_id", "external_id", "visitor_id", "experiment_id", "variant_id", "variant_key",
                      "started_at", "last_message_at", "session_seconds", "visitor_messages", "lead_count"]
_MESSAGE_KEYS = ["conversation_id", "role", "text", "sent_at", "variant_id", "client_message_id", "response"]
# SQLite: a follow-up's span and counter (the message insert runs first, in the same transaction).
FOLLOW_UP_TOUCH_SQLITE = (
    sa.update(Conversation.__table__).where(C.id == sa.bindparam("conversation_id"))
    .values(started_at=runtime._STARTED, last_message_at=runtime._LAST,
            session_seconds=runtime.seconds_between(runtime._STARTED, runtime._LAST),
            visitor_messages=C.visitor_messages + sa.bindparam("visitor_increment", type_=sa.Integer))
)
TOUCH_KEY = api_keys.TOUCH


class Compiled:
    """A Core statement as the driver's SQL with named parameters, compiled once per dialect."""

    _dialects = {"sqlite": sqlite.pysqlite.SQLiteDialect_pysqlite(paramstyle="named"),
                 "postgresql": postgresql.psycopg.PGDialect_psycopg()}

    def __init__(self, statement: sa.Executable, column_keys: list[str] | None = None):
        self.statement, self.column_keys = statement, column_keys
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


READ = Compiled(AUTHENTICATE_LOOKUP)
Row = namedtuple("Row", [c.name for c in AUTHENTICATE_LOOKUP.selected_columns])  # type: ignore[misc]
_CONVERT = [(i, name) for i, name in enumerate(Row._fields) if name in _JSON_COLUMNS | _TIME_COLUMNS]
WRITES = {name: Compiled(statement, keys) for name, statement, keys in (
    ("new_conversation", NEW_CONVERSATION_PG, None), ("follow_up", FOLLOW_UP_PG, None),
    ("assignment", INSERT_ASSIGNMENT, _ASSIGNMENT_KEYS), ("conversation", INSERT_CONVERSATION, _CONVERSATION_KEYS),
    ("message", INSERT_MESSAGE, _MESSAGE_KEYS), ("touch", FOLLOW_UP_TOUCH_SQLITE, None),
    ("touch_key", TOUCH_KEY, None))}


_UTC = UTCDateTime()


def _time(dialect: str, value: datetime) -> Any:
    """An aware UTC datetime as UTCDateTime stores it: naive UTC (PostgreSQL), SQLAlchemy's text form (SQLite)."""
    naive = _UTC.process_bind_param(value, None)
    return naive if dialect == "postgresql" else naive.isoformat(" ", "microseconds")


def _read_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc)


def _row(raw: tuple) -> Row:
    values = list(raw)
    for i, name in _CONVERT:
        value = values[i]
        if value is None:
            continue
        if name in _TIME_COLUMNS:
            values[i] = _read_time(value)
        elif isinstance(value, str):  # SQLite hands JSON back as text; psycopg parses it
            values[i] = json.loads(value)
    return Row(*values)


class _Handover(Exception):
    """The hot path stops here; the reference path takes over (nothing of this request was written)."""


def record_message(token: str | None, agent_id: int, report: MessageReport) -> MessageResult | RuntimeAuth:
    """Authenticate and record `report`; a MessageResult when done, else the RuntimeAuth for the reference path.

    Raises Unauthorized (no/unknown/revoked key), NotFound (the agent is not the key's workspace's) and Conflict
    (the conversation is another visitor's) exactly as the reference path does.
    """
    if not token:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
    engine = db.engine
    dialect = engine.dialect.name
    raw = engine.raw_connection()
    connection = raw.driver_connection
    postgres = dialect == "postgresql"
    auth = None
    try:
        if postgres:
            connection.autocommit = True  # each statement its own transaction: no BEGIN/COMMIT round trips
        cursor = connection.cursor()
        rows = [_row(r) for r in READ.execute(cursor, dialect, {
            "key_hash": api_keys.hash_key(token), "agent_id": agent_id if 1 <= agent_id <= MAX_DB_ID else None,
            "external_id": report.external_id, "message_id": report.message_id,
            "visitor_id": report.visitor_id}).fetchall()]
        auth = runtime.auth_from_rows(rows, agent_id)
        first = rows[0]
        if api_keys.touch_due(first.last_used_at):
            _write(raw, cursor, dialect, [("touch_key", {"key_id": auth.key_id,
                                                                "now": _time(dialect, utcnow())})])
        if auth.agent is None:
            raise NotFound("No such agent.")
        if first.conversation_id is not None:
            check_visitor(first.conversation_visitor_id, report.visitor_id, report.external_id)
            if first.response is not None:
                return runtime._replay(first, report)
            return _follow_up(raw, cursor, dialect, auth, first, report)
        return _new_conversation(raw, cursor, dialect, auth, first, report)
    except _Handover:
        return auth
    except Exception as error:
        if engine.dialect.is_disconnect(error, connection, None):
            raw.invalidate(error)
            engine.dispose(close=False)  # as SQLAlchemy does on a disconnect: the pool's other connections too
        raise
    finally:
        if postgres and raw.is_valid:
            connection.autocommit = False
        raw.close()


def _new_conversation(raw: Any, cursor: Any, dialect: str, auth: RuntimeAuth, first: Row,
                      report: MessageReport) -> MessageResult:
    """Steps 2–5 for a conversation seen for the first time, and its first message."""
    arm, chosen = runtime.choose_arm(auth.arms if report.role == "visitor" else [], first.assigned_variant_id,
                                     first.assigned_variant_key, report.visitor_id)
    message_id = report.message_id or uuid.uuid4().hex
    body = _message_body(report.external_id, message_id, auth.agent, arm)
    sent_at = _time(dialect, report.sent_at)
    conversation = runtime.new_conversation_values(auth.agent_id, report, arm, sent_at)
    message = {"role": report.role, "text": report.text, "sent_at": sent_at, "variant_id": conversation["variant_id"],
               "client_message_id": message_id, "response": json_text(body)}
    if dialect == "postgresql":
        row = WRITES["new_conversation"].execute(cursor, dialect, {
            **conversation, **message, "message_id": message_id, "assign": chosen is not None,
            "assigned_at": sent_at}).fetchone()
        if row[2] is None:  # a concurrent request won a unique key; nothing after it was written
            raise _Handover
        return MessageResult(message["response"], False)
    writes = [("conversation", conversation), ("message", message)]
    if chosen is not None:
        writes.insert(0, ("assignment", assignment.assignment_values(auth.agent_id, report.visitor_id, chosen,
                                                                     sent_at)))
    _write(raw, cursor, dialect, writes, chain="conversation_id")
    return MessageResult(message["response"], False)


def _follow_up(raw: Any, cursor: Any, dialect: str, auth: RuntimeAuth, first: Row,
               report: MessageReport) -> MessageResult:
    """Step 1 for a stamped conversation: its stamp (with live fields unless deleted), the message, the span."""
    arm = runtime.stamp_arm(first.stamp_experiment_id, first.stamp_variant_id, first.stamp_variant_key,
                            first.stamp_experiment_name, first.stamp_kind, first.stamp_variant_name,
                            first.stamp_config)
    if arm is None:
        raise _Handover  # not stamped yet: steps 2–4 may stamp it, with the reference path's atomic update
    message_id = report.message_id or uuid.uuid4().hex
    body = _message_body(report.external_id, message_id, auth.agent, arm)
    sent_at = _time(dialect, report.sent_at)
    message = {"conversation_id": first.conversation_id, "role": report.role, "text": report.text,
               "sent_at": sent_at, "variant_id": arm.variant_id, "client_message_id": message_id,
               "response": json_text(body)}
    increment = int(report.role == "visitor")
    if dialect == "postgresql":
        row = WRITES["follow_up"].execute(cursor, dialect, {
            **message, "message_id": message_id, "visitor_increment": increment}).fetchone()
        if row[0] is None:  # a concurrent delivery of the same message_id won
            raise _Handover
        return MessageResult(message["response"], False)
    _write(raw, cursor, dialect, [
        ("message", message),
        ("touch", {"conversation_id": first.conversation_id, "sent_at": sent_at, "visitor_increment": increment})])
    return MessageResult(message["response"], False)


def _write(raw: Any, cursor: Any, dialect: str, writes: list[tuple[str, dict[str, Any]]],
           chain: str | None = None) -> None:
    """Run `writes` in one transaction; an insert that hits a unique key rolls all back and hands over.

    `raw`: the pool's connection. `chain`: the parameter that takes the previous insert's new id (the
    conversation's, for its message).
    """
    if dialect == "postgresql":  # autocommit: one statement is one transaction
        for name, params in writes:
            WRITES[name].execute(cursor, dialect, params)
        return
    connection = raw.driver_connection
    database = db.engine.url.database
    checkpointer = _checkpointer(raw, database)
    with _sqlite_writer(database):
        cursor.execute("BEGIN IMMEDIATE")  # the write lock up front: no deadlock-prone upgrade from a read
        try:
            new_id = None
            for name, params in writes:
                if chain and name == "message":
                    params = {**params, chain: new_id}
                statement = WRITES[name]
                result = statement.execute(cursor, dialect, params)
                if isinstance(statement.statement, sa.Insert):
                    row = result.fetchone()
                    if row is None:
                        raise _Handover
                    new_id = row[0]
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    if checkpointer is not None:
        checkpointer.wake.set()


def _checkpointer(raw: Any, database: str | None) -> wal_checkpoint.Checkpointer | None:
    """This process's WAL checkpointer for a database file, with the connection's automatic checkpoint turned
    off (once per connection): the commit never copies the log inside the writer lock."""
    if not _is_file(database):
        return None
    if not raw.info.get("wal_checkpoint_off"):
        raw.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        raw.info["wal_checkpoint_off"] = True
    return wal_checkpoint.checkpointer(database)


def _is_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and not database.startswith("file:")


_WRITER_LOCKS: dict[str, tuple[int, int, threading.Lock]] = {}  # database → (pid, fd, thread lock)
_WRITER_LOCKS_GUARD = threading.Lock()


class _sqlite_writer:
    """Queue the hot path's SQLite write transactions on a lock the kernel wakes waiters from at once.

    SQLite makes a writer that finds the database locked sleep in its busy handler (1, 2, 5, 10 … ms steps,
    however short the other write is): between two gunicorn workers that is where the tail latency came from.
    Here writers wait on a thread lock (gthread workers) and an `flock` of a file beside the database (worker
    processes) instead, and take SQLite's lock uncontended. Other writers (the web app, the reference path)
    still meet SQLite's own lock and busy handler; nothing depends on this lock for correctness.
    """

    def __init__(self, database: str | None):
        self.lock: tuple[int, threading.Lock] | None = None  # (fd, thread lock)
        if _is_file(database):
            self.lock = _writer_lock(database)

    def __enter__(self) -> None:
        if self.lock:
            fd, thread_lock = self.lock
            thread_lock.acquire()
            fcntl.flock(fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.lock:
            fd, thread_lock = self.lock
            fcntl.flock(fd, fcntl.LOCK_UN)
            thread_lock.release()


def _writer_lock(database: str) -> tuple[int, threading.Lock]:
    """This process's lock file descriptor and thread lock for `database` (opened again after a fork: an
    inherited descriptor would share its flock with the parent)."""
    entry = _WRITER_LOCKS.get(database)
    if entry is None or entry[0] != os.getpid():
        with _WRITER_LOCKS_GUARD:
            entry = _WRITER_LOCKS.get(database)
            if entry is None or entry[0] != os.getpid():
                fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
                entry = (os.getpid(), fd, threading.Lock())
                _WRITER_LOCKS[database] = entry
    return entry[1], entry[2]

