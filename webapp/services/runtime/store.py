"""The runtime's store: one read of the state a decision needs, and the writes of a decision, race-safe.

It runs `statements` on the pool's DBAPI connection (no ORM session): PostgreSQL in autocommit, so that a write
that is one statement is one transaction and one round trip; SQLite with `BEGIN IMMEDIATE` … `COMMIT`. A write
answers False (or None) when a unique key showed that a concurrent request got there first; it then wrote
nothing, and the caller reads again and decides again (see service.py).
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Any, Iterator

from webapp.extensions import db
from webapp.models import UTCDateTime, json_text
from webapp.services.runtime import statements, wal_checkpoint
from webapp.services.runtime.rules import (Access, Agent, Arm, Assigned, EarlierEvent, EarlierLead, EarlierMessage,
                                           EventWrite, FeedbackWrite, Key, LeadWrite, MessageWrite, Option, State,
                                           StoredConversation)
from webapp.services.workspace.api_keys import hash_key


@dataclass(frozen=True)
class Caller:
    """Who reads: a bearer token (the API), or a workspace (a trusted in-process caller: the tests, the CLI)."""

    token: str | None = None
    workspace_id: int | None = None
    by_key: bool = True

    def params(self) -> dict[str, Any]:
        return {"key_hash": hash_key(self.token)} if self.by_key else {"workspace_id": self.workspace_id}


_UTC = UTCDateTime()


@cache
def _conversions(row_type: type) -> tuple[tuple[int, bool], ...]:
    """The positions of a read's time and JSON columns, and whether each is a time."""
    return tuple((i, name in statements.TIME_COLUMNS) for i, name in enumerate(row_type._fields)
                 if name in statements.TIME_COLUMNS or name in statements.JSON_COLUMNS)


class Store:
    """One request's pooled DBAPI connection, as a context manager (see `connect()`)."""

    def __init__(self, raw: Any):
        self.raw, self.connection = raw, raw.driver_connection
        self.engine = db.engine
        self.dialect = self.engine.dialect.name
        self.postgres = self.dialect == "postgresql"

    def __enter__(self) -> Store:
        try:
            if self.postgres:
                self.connection.autocommit = True  # each statement its own transaction: no BEGIN/COMMIT round trips
            self.cursor = self.connection.cursor()
        except BaseException:
            self.raw.close()
            raise
        return self

    def __exit__(self, error_type: Any, error: BaseException | None, _: Any) -> None:
        try:
            if isinstance(error, Exception) and self.engine.dialect.is_disconnect(error, self.connection, None):
                self.raw.invalidate(error)
                self.engine.dispose(close=False)  # as SQLAlchemy does on a disconnect: the pool's other connections
        finally:
            if self.postgres and self.raw.is_valid:
                self.connection.autocommit = False
            self.raw.close()

    # --- reading -------------------------------------------------------------------------------------------------

    def read(self, kind: str, caller: Caller, agent_id: int | None, **lookup: Any) -> tuple[Access, State | None]:
        """The read of `kind` (statements.READS) in one round trip: who asks, and the state when the agent is
        theirs (None otherwise)."""
        compiled = statements.compiled_read(kind, caller.by_key)
        rows = [self._row(compiled.row, raw) for raw in compiled.execute(
            self.cursor, self.dialect, {**caller.params(), "agent_id": agent_id, **lookup}).fetchall()]
        access = _access(rows, caller.by_key)
        return access, _state(rows, access.agent)

    def _row(self, row_type: type, raw: tuple) -> Any:
        """A row with aware datetimes and parsed JSON (SQLite hands both back as text, psycopg naive datetimes)."""
        values = None
        for i, is_time in _conversions(row_type):
            value = raw[i]
            if value is None:
                continue
            if values is None:
                values = list(raw)
            if is_time:
                values[i] = (datetime.fromisoformat(value) if isinstance(value, str) else value).replace(
                    tzinfo=timezone.utc)
            elif isinstance(value, str):
                values[i] = json.loads(value)
        return row_type(*(values or raw))

    # --- writing -------------------------------------------------------------------------------------------------

    def time(self, value: datetime) -> Any:
        """An aware datetime as UTCDateTime stores it: naive UTC (PostgreSQL), SQLAlchemy's text form (SQLite)."""
        naive = _UTC.process_bind_param(value, None)
        return naive if self.postgres else naive.isoformat(" ", "microseconds")

    def write_message(self, write: MessageWrite) -> bool:
        """Apply a message decision; False (nothing written) when a concurrent request won a unique key, or stamped
        the conversation with another arm than this message would (see MessageWrite.stands_alone)."""
        params = self._message_params(write)
        if self.postgres:
            statement = statements.compiled_message_cte(write.conversation is not None, write.assignment is not None)
            if write.stands_alone:  # autocommit: the one statement is the transaction
                row = statement.execute(self.cursor, self.dialect, params).fetchone()
                return row[0] is not None
            with self._postgres_transaction() as keep:  # the stamp the update left decides: commit or roll back
                row = statement.execute(self.cursor, self.dialect, params).fetchone()
                ok = keep(row[0] is not None and row[1] == write.message.variant_id)
            return ok
        with self._sqlite_transaction() as step:
            if write.assignment is not None and step("assignment", params) is None:
                return False
            if write.conversation is not None:
                params["conversation_id"] = step("conversation", params)
                if params["conversation_id"] is None:
                    return False
            if step("message", params) is None:
                return False
            if write.touch is not None:
                stamp = statements.COMPILED_TOUCH.execute(self.cursor, self.dialect, params).fetchone()[0]
                if not write.stands_alone and stamp != write.message.variant_id:
                    return step.abandon()  # stamped with another arm since the read: decide again
        return True

    def _message_params(self, write: MessageWrite) -> dict[str, Any]:
        message = write.message
        sent_at = self.time(message.sent_at)
        params = {"role": message.role, "text": message.text, "sent_at": sent_at, "variant_id": message.variant_id,
                  "client_message_id": message.client_message_id, "response": message.reply}
        if write.assignment is not None:
            assignment = write.assignment
            params.update(_stamp_params(assignment.arm), agent_id=assignment.agent_id, visitor_id=assignment.visitor_id,
                          assigned_at=self.time(assignment.assigned_at))
        if write.conversation is not None:
            new = write.conversation
            params.update(_stamp_params(new.stamp), agent_id=new.agent_id, external_id=new.external_id,
                          visitor_id=new.visitor_id, started_at=sent_at, last_message_at=sent_at,
                          session_seconds=0.0, visitor_messages=new.visitor_messages, lead_count=0)
        else:
            touch = write.touch
            stamp = _stamp_params(touch.stamp)
            params.update(conversation_id=touch.conversation_id, visitor_increment=touch.visitor_increment,
                          stamp_experiment_id=stamp["experiment_id"], stamp_variant_id=stamp["variant_id"],
                          stamp_variant_key=stamp["variant_key"])
        return params

    def write_lead(self, write: LeadWrite) -> int | None:
        """Insert a lead (and count it on a stamped conversation); None when the idempotency key is taken."""
        params = {**_stamp_params(write.stamp), "agent_id": write.agent_id, "conversation_id": write.conversation_id,
                  "visitor_id": write.visitor_id, "fields": json_text(write.fields),
                  "captured_at": self.time(write.captured_at), "idempotency_key": write.idempotency_key}
        if self.postgres:  # autocommit: the insert and the count are one statement
            return statements.compiled_lead_cte(write.counted).execute(self.cursor, self.dialect, params).fetchone()[0]
        with self._sqlite_transaction() as step:
            lead_id = step("lead", params)
            if lead_id is not None and write.counted:
                statements.COMPILED_COUNT_LEAD.execute(self.cursor, self.dialect, params)
        return lead_id

    def write_event(self, write: EventWrite) -> int | None:
        """Insert a goal event; None when its event_id is taken in the conversation (a concurrent delivery)."""
        params = {**_stamp_params(write.stamp), "agent_id": write.agent_id, "conversation_id": write.conversation_id,
                  "visitor_id": write.visitor_id, "name": write.name, "occurred_at": self.time(write.occurred_at),
                  "event_id": write.event_id}
        if self.postgres:
            row = statements.POSTGRES_EVENT_INSERT.execute(self.cursor, self.dialect, params).fetchone()
            return row[0] if row else None
        with self._sqlite_transaction() as step:
            return step("event", params)

    def write_feedback(self, write: FeedbackWrite) -> int | None:
        """Insert the conversation's feedback, or replace its earlier one; None when a concurrent request wrote the
        conversation's first feedback (or removed the one this replaces) since the read."""
        params = {**_stamp_params(write.stamp), "agent_id": write.agent_id, "conversation_id": write.conversation_id,
                  "visitor_id": write.visitor_id, "rating": write.rating, "comment": write.comment,
                  "given_at": self.time(write.given_at)}
        if write.replaces is not None:
            params["feedback_id"] = write.replaces
            if self.postgres:  # autocommit: one statement
                row = statements.COMPILED_REPLACE_FEEDBACK.execute(self.cursor, self.dialect, params).fetchone()
                return row[0] if row else None
            with self._sqlite_transaction() as step:
                row = statements.COMPILED_REPLACE_FEEDBACK.execute(self.cursor, self.dialect, params).fetchone()
                if row is None:
                    step.abandon()
                    return None
                return row[0]
        if self.postgres:
            row = statements.POSTGRES_FEEDBACK_INSERT.execute(self.cursor, self.dialect, params).fetchone()
            return row[0] if row else None
        with self._sqlite_transaction() as step:
            return step("feedback", params)

    def touch_key(self, key_id: int, now: datetime) -> None:
        """Record that the key was used (rules.key_touch_due says when)."""
        params = {"key_id": key_id, "now": self.time(now)}
        if self.postgres:
            statements.COMPILED_TOUCH_KEY.execute(self.cursor, self.dialect, params)
            return
        with self._sqlite_transaction():
            statements.COMPILED_TOUCH_KEY.execute(self.cursor, self.dialect, params)

    @contextmanager
    def _postgres_transaction(self) -> Iterator[Any]:
        """A transaction on the autocommit connection, for a write that must be checked before it commits:
        the body calls `keep(ok)`; anything else rolls back."""
        decision = {"commit": False}

        def keep(ok: bool) -> bool:
            decision["commit"] = ok
            return ok

        self.connection.autocommit = False
        try:
            yield keep
            if decision["commit"]:
                self.connection.commit()
            else:
                self.connection.rollback()
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            self.connection.autocommit = True

    def _sqlite_transaction(self) -> "_SqliteTransaction":
        return _SqliteTransaction(self)


class _SqliteTransaction:
    """`BEGIN IMMEDIATE` (the write lock up front: no deadlock-prone upgrade from a read) … `COMMIT`, queued on the
    writer lock. `step(name, params)` runs an insert and answers its new id, or None — a unique key was taken —
    after which the transaction rolls back, as it does after `abandon()`."""

    def __init__(self, store: Store):
        self.cursor, self.dialect, self.connection = store.cursor, store.dialect, store.connection
        self.database = db.engine.url.database
        self.checkpointer = _checkpointer(store.raw, self.database)
        self.writer = SqliteWriter(self.database)
        self.lost = False

    def __enter__(self) -> "_SqliteTransaction":
        self.writer.__enter__()
        try:
            self.cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.writer.__exit__()
            raise
        return self

    def __exit__(self, error_type: Any, *_: Any) -> None:
        try:
            if error_type is not None or self.lost:
                self.connection.rollback()
            else:
                self.connection.commit()
        finally:
            self.writer.__exit__()
        if error_type is None and not self.lost and self.checkpointer is not None:
            self.checkpointer.wake.set()

    def __call__(self, name: str, params: dict[str, Any]) -> int | None:
        row = statements.SQLITE_INSERTS[name].execute(self.cursor, self.dialect, params).fetchone()
        if row is None:
            self.lost = True
            return None
        return row[0]

    def abandon(self) -> bool:
        self.lost = True
        return False


def _stamp_params(arm: Arm | None) -> dict[str, Any]:
    return {"experiment_id": arm.experiment_id if arm else None, "variant_id": arm.variant_id if arm else None,
            "variant_key": arm.variant_key if arm else None}


def connect() -> Store:
    """A Store on a pooled connection (`with connect() as db:`), given back as the ORM session expects it:
    transactional, clean."""
    return Store(db.engine.raw_connection())


# --- rows → rules' dataclasses ------------------------------------------------------------------------------------

def _access(rows: list[Any], by_key: bool) -> Access:
    if not rows:
        return Access(None, None, None, by_key)  # no key with this hash (or no such workspace)
    first = rows[0]
    agent = None
    if first.agent_id is not None:
        agent = Agent(first.agent_id, first.persona_name, first.persona_tone, first.instructions,
                      first.workspace_name)
    key = Key(first.key_id, first.revoked_at is not None, first.last_used_at) if by_key else None
    return Access(first.workspace_id, agent, key, by_key)


def _state(rows: list[Any], agent: Agent | None) -> State | None:
    if agent is None:
        return None
    first = rows[0]
    fields = first._fields
    options = tuple(Option(Arm(r.arm_experiment_id, r.arm_id, r.arm_key, r.arm_experiment_name, r.arm_kind,
                               r.arm_variant_name, r.arm_config), r.arm_weight)
                    for r in rows if r.arm_experiment_id is not None)
    conversation = assigned = earlier_message = earlier_lead = earlier_event = None
    if "conversation_id" in fields and first.conversation_id is not None:
        conversation = StoredConversation(first.conversation_id, first.conversation_visitor_id, _stamp(first))
    if "assigned_variant_id" in fields and first.assigned_variant_id is not None:
        assigned = Assigned(first.assigned_variant_id, first.assigned_variant_key, first.assigned_at)
    if "earlier_role" in fields and first.earlier_role is not None:
        earlier_message = EarlierMessage(first.earlier_role, first.earlier_text or "", first.earlier_reply)
    if "earlier_lead_id" in fields and first.earlier_lead_id is not None:
        earlier_lead = EarlierLead(first.earlier_lead_id, first.earlier_lead_fields)
    if "earlier_event_name" in fields and first.earlier_event_name is not None:
        earlier_event = EarlierEvent(first.earlier_event_name, first.earlier_event_at,
                                     first.earlier_event_variant_id is not None)
    earlier_feedback_id = first.earlier_feedback_id if "earlier_feedback_id" in fields else None
    return State(agent, options, conversation, assigned, earlier_message, earlier_lead, earlier_event,
                 earlier_feedback_id)


def _stamp(row: Any) -> Arm | None:
    """A conversation's stamp: None when unstamped; names and config only while the experiment exists (its kind
    is null once it is deleted)."""
    if row.stamp_experiment_id is None or row.stamp_variant_id is None:
        return None
    if row.stamp_kind is None:
        return Arm(row.stamp_experiment_id, row.stamp_variant_id, row.stamp_variant_key or "")
    return Arm(row.stamp_experiment_id, row.stamp_variant_id, row.stamp_variant_key, row.stamp_experiment_name,
               row.stamp_kind, row.stamp_variant_name, row.stamp_config)


# --- SQLite: the writer lock and the WAL checkpointer -------------------------------------------------------------

def _checkpointer(raw: Any, database: str | None) -> wal_checkpoint.Checkpointer | None:
    """This process's WAL checkpointer for a database file, with the connection's automatic checkpoint turned
    off (once per connection): a commit never copies the log inside the writer lock (benchmarks/README.md)."""
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


class SqliteWriter:
    """Queue the runtime's SQLite write transactions on a lock the kernel wakes waiters from at once.

    SQLite's busy handler sleeps 1, 2, 5, 10 … ms however short the other write is; waiting on a thread lock
    (gthread workers) and an `flock` beside the database (worker processes) instead cut the tail latency. Other
    writers (the web app) still meet SQLite's own lock; nothing depends on this lock for correctness.
    """

    def __init__(self, database: str | None):
        self.lock = writer_lock(database) if _is_file(database) else None

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



def writer_lock(database: str) -> tuple[int, threading.Lock]:
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
