"""The runtime store (services/runtime/store.py): the rows a script of messages writes, lost races, the pooled
connections it gives back, the SQLite writer lock and WAL checkpointer.

The same script runs over the API (a bearer key) and through a trusted in-process caller (`record_message`, by
workspace): both go through the one store, and the rows each writes (raw, as stored: SQLite's datetime text,
PostgreSQL's timestamps) must be the same, and as expected.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests import factories
from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db
from webapp.models import ExperimentAssignment, Variant
from webapp.services.runtime import rules, service as runtime, statements, store, wal_checkpoint
from webapp.services.errors import DomainError

T0 = "2026-11-20T10:00:00Z"
SCRIPT = [  # (body fields, expected status)
    ({"role": "visitor", "text": "Hi", "sent_at": T0, "message_id": "m1"}, 201),
    ({"role": "agent", "text": "Hello! How can I help?", "sent_at": "2026-11-20T10:00:05Z"}, 201),
    ({"role": "visitor", "text": "sent earlier, delivered late", "sent_at": "2026-11-20T09:59:30.250000+00:00"}, 201),
    ({"role": "visitor", "text": "Hi", "sent_at": T0, "message_id": "m1"}, 200),  # a replay
    ({"role": "visitor", "text": "Hi", "message_id": "m1"}, 200),  # a retry's sent_at may differ (default: now)
    ({"role": "visitor", "text": "Hi again", "sent_at": T0, "message_id": "m1"}, 409),  # m1 reused: not a retry
    ({"role": "agent", "text": "Hi", "sent_at": T0, "message_id": "m1"}, 409),
    ({"role": "visitor", "text": "What does it cost?", "sent_at": "2026-11-20T11:30:00.5+01:00", "message_id": "m4"}, 201),
]


def _api(client, world):
    def send(body):
        response = client.post(f"/api/v1/agents/{world.agent_id}/messages", json=body,
                               headers={"Authorization": f"Bearer {world.api_key}"})
        return response.status_code, response.get_json()
    return send


def _trusted(app, world):
    def send(body):
        with app.app_context():
            try:
                result = runtime.record_message(world.workspace_id, world.agent_id, body)
            except DomainError as error:
                return error.status, error.fields
            finally:
                db.session.remove()
        return (200 if result.replayed else 201), result.body
    return send


def _first_messages(app, world, prefix: str, count: int) -> None:
    """`count` visitors' first messages over HTTP, each in a conversation of its own."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.api_key}"}
    for i in range(count):
        assert client.post(f"/api/v1/agents/{world.agent_id}/messages", headers=headers, json={
            "visitor_id": f"{prefix}-{i}", "conversation_id": f"{prefix}-{i}", "role": "visitor"}).status_code == 201


def _run(send, conversation, visitor, script=SCRIPT):
    for fields, status in script:
        got_status, body = send({"visitor_id": visitor, "conversation_id": conversation, **fields})
        assert got_status == status, body


def _strip(body):
    return {k: v for k, v in (json.loads(body) if isinstance(body, str) else body).items()
            if k not in ("conversation_id", "message_id")}


def _stored(app, conversation):
    """The conversation and its messages as stored (raw column values), without ids."""
    with app.app_context():
        connection = db.session.connection()
        row = connection.execute(sa.text("SELECT * FROM conversations WHERE external_id = :c"),
                                 {"c": conversation}).mappings().one()
        messages = connection.execute(sa.text(
            "SELECT role, text, sent_at, variant_id, client_message_id, response FROM messages "
            "WHERE conversation_id = :id ORDER BY sent_at, id"), {"id": row["id"]}).mappings().all()
        db.session.remove()
    conversation_row = {k: v for k, v in row.items() if k not in ("id", "external_id")}
    message_rows = [{**m, "response": _strip(m["response"]),
                     "client_message_id": m["client_message_id"] if m["client_message_id"] in ("m1", "m4")
                     else bool(m["client_message_id"])} for m in messages]
    return conversation_row, message_rows


@pytest.mark.parametrize("order", [("api", "trusted"), ("trusted", "api")])
def test_both_paths_write_the_same_rows(app, client, world, order):
    with app.app_context():
        factories.experiment(world.agent_id, weights=(1, 1), status="running")
    paths = {"api": _api(client, world), "trusted": _trusted(app, world)}
    for name in order:
        _run(paths[name], f"conv-{name}", "visitor-twin")
    api, trusted = _stored(app, "conv-api"), _stored(app, "conv-trusted")
    assert api == trusted
    conversation, messages = api
    assert conversation["variant_id"] is not None and conversation["visitor_messages"] == 3
    assert conversation["session_seconds"] == pytest.approx(30 * 60 + 30.25)  # 09:59:30.25 → 10:30:00.5
    assert [m["role"] for m in messages] == ["visitor", "visitor", "agent", "visitor"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ExperimentAssignment)) == 1
        db.session.remove()


@pytest.mark.parametrize("path", ["api", "trusted"])
def test_an_assignment_is_dated_by_the_message_that_made_it(app, client, world, path):
    """assigned_at is the assigning message's sent_at (history sent late keeps its days, as the per-day metrics
    do), and the server's clock when the runtime sends none."""
    with app.app_context():
        factories.experiment(world.agent_id, weights=(1, 1), status="running")
    send = {"api": _api(client, world), "trusted": _trusted(app, world)}[path]
    assert send({"visitor_id": "old", "conversation_id": "c-old", "role": "visitor", "sent_at": T0})[0] == 201
    before = datetime.now(timezone.utc)
    assert send({"visitor_id": "new", "conversation_id": "c-new", "role": "visitor"})[0] == 201
    after = datetime.now(timezone.utc)
    with app.app_context():
        dates = dict(db.session.execute(sa.select(ExperimentAssignment.visitor_id, ExperimentAssignment.assigned_at)).all())
        db.session.remove()
    assert dates["old"] == datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    assert before <= dates["new"] <= after


def test_both_paths_agree_on_a_conversation_stamped_mid_way(app, client, world):
    """Unstamped (no experiment) first; a later visitor message finds a running experiment and stamps it.
    The store writes it in a transaction that checks the stamp its update leaves."""
    before = [({"role": "visitor", "text": "before", "sent_at": T0}, 201),
              ({"role": "agent", "text": "reply", "sent_at": "2026-11-20T10:00:01Z"}, 201)]
    after = [({"role": "visitor", "text": "after", "sent_at": "2026-11-20T10:05:00Z"}, 201),
             ({"role": "visitor", "text": "again", "sent_at": "2026-11-20T10:06:00Z"}, 201)]
    paths = {"api": _api(client, world), "trusted": _trusted(app, world)}
    for name, send in paths.items():
        _run(send, f"mid-{name}", "visitor-mid", before)
    with app.app_context():
        factories.experiment(world.agent_id, weights=(1, 1), status="running")
    for name, send in paths.items():
        _run(send, f"mid-{name}", "visitor-mid", after)
    api, trusted = _stored(app, "mid-api"), _stored(app, "mid-trusted")
    assert api == trusted
    assert api[0]["variant_id"] is not None and api[0]["visitor_messages"] == 2  # only stamped activity counts
    assert [m["variant_id"] is None for m in api[1]] == [True, True, False, False]


def test_an_assignment_written_between_read_and_write_wins(app, client, world, monkeypatch):
    """The read found no assignment row; a concurrent request then inserts one for another variant. The write
    meets the unique key and writes nothing; the store reads again, and the decision takes the winner's row."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
        variants = db.session.scalars(sa.select(Variant).where(Variant.experiment_id == experiment_id)
                                      .order_by(Variant.position)).all()
        by_id = {v.id: (v.id, v.key) for v in variants}
        db.session.remove()
    real_bucket = rules.bucket

    def bucket_then_lose_the_race(rows, visitor_id):
        chosen = real_bucket(rows, visitor_id)
        other_id, other_key = next(pair for vid, pair in by_id.items() if vid != chosen.variant_id)
        with db.engine.begin() as connection:  # the concurrent request, on a connection of its own
            connection.execute(sa.insert(ExperimentAssignment).values(
                agent_id=world.agent_id, experiment_id=experiment_id, variant_id=other_id, variant_key=other_key,
                visitor_id=visitor_id, assigned_at=sa.func.now()))
        return chosen

    monkeypatch.setattr(rules, "bucket", bucket_then_lose_the_race)
    status, body = _api(client, world)({"visitor_id": "racer", "conversation_id": "race-conv", "role": "visitor"})
    assert status == 201
    with app.app_context():
        winner = db.session.scalar(sa.select(ExperimentAssignment.variant_id)
                                   .where(ExperimentAssignment.visitor_id == "racer"))
        db.session.remove()
    assert body["variant"]["id"] == winner
    conversation, messages = _stored(app, "race-conv")
    assert conversation["variant_id"] == winner and [m["variant_id"] for m in messages] == [winner]


def test_a_conversation_stamped_with_another_arm_since_the_read_is_decided_again(app, client, world, monkeypatch):
    """An agent's greeting opened the conversation; the visitor's first message reads it unstamped and decides
    on its bucket, but before it writes, a concurrent message stamps the conversation with the other arm. The
    stamp check rolls the write back; the second read finds the stamp and the message follows it."""
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, weights=(1, 1), status="running")
        variants = {v.key: v for v in db.session.scalars(
            sa.select(Variant).where(Variant.experiment_id == experiment_id))}
        db.session.expunge_all()
        db.session.remove()
    send = _api(client, world)
    assert send({"visitor_id": "late", "conversation_id": "greeted", "role": "agent", "text": "Hello!"})[0] == 201
    real_read = store.Store.read
    reads = []

    def read_then_someone_stamps(self, kind, caller, agent_id, **lookup):
        access, state = real_read(self, kind, caller, agent_id, **lookup)
        reads.append(state.conversation.stamp if state.conversation else None)
        if len(reads) == 1:
            mine = rules.bucket(state.options, "late")
            other = next(v for v in variants.values() if v.id != mine.variant_id)
            with db.engine.begin() as connection:  # the concurrent message, on a connection of its own
                connection.execute(sa.text(
                    "UPDATE conversations SET experiment_id = :e, variant_id = :v, variant_key = :k "
                    "WHERE external_id = 'greeted'"), {"e": experiment_id, "v": other.id, "k": other.key})
        return access, state

    monkeypatch.setattr(store.Store, "read", read_then_someone_stamps)
    status, body = send({"visitor_id": "late", "conversation_id": "greeted", "role": "visitor", "text": "hi"})
    assert status == 201 and len(reads) == 2 and reads[0] is None and reads[1] is not None
    conversation, messages = _stored(app, "greeted")
    assert body["variant"]["id"] == conversation["variant_id"] == reads[1].variant_id
    assert [m["variant_id"] for m in messages] == [None, conversation["variant_id"]]
    assert conversation["visitor_messages"] == 1  # counted once: the rolled-back write left nothing
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ExperimentAssignment)) == 0
        db.session.remove()  # the stamp came from the conversation (step 1): the rolled-back row is gone too


def test_connections_go_back_to_the_pool_as_the_session_expects(database_url, world):
    """The store runs PostgreSQL in autocommit and SQLite outside a transaction between statements; a
    connection it used, taken next by the ORM session, is transactional and clean (one-connection pool)."""
    app = create_app(type("OnePool", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0}}))
    _first_messages(app, world, "pool", 3)
    with app.app_context():
        driver = db.session.connection().connection.driver_connection
        if db.engine.dialect.name == "postgresql":
            assert driver.autocommit is False
        db.session.execute(sa.text("DELETE FROM messages"))
        db.session.rollback()  # must undo the delete: the session's connection is in a transaction
        assert db.session.scalar(sa.text("SELECT count(*) FROM messages")) == 3
        db.session.remove()
        db.engine.dispose()


def test_statements_compile_for_both_engines():
    """Every runtime statement compiles to the driver's SQL with named parameters on both engines."""
    for kind in statements.READS:
        sqlite_sql, fixed = statements.compiled_read(kind, True).sql("sqlite")
        assert ":key_hash" in sqlite_sql and fixed["status_1"] == "running"
        assert "%(workspace_id)s" in statements.compiled_read(kind, False).sql("postgresql")[0]
    for new_conversation in (True, False):
        for new_assignment in (True, False):
            sql = statements.compiled_message_cte(new_conversation, new_assignment).sql("postgresql")[0]
            assert sql.startswith("WITH") and "%(client_message_id)s" in sql
            assert ("INSERT INTO experiment_assignments" in sql) is new_assignment
            assert ("UPDATE conversations" in sql) is not new_conversation
    for counted in (True, False):
        assert "%(idempotency_key)s" in statements.compiled_lead_cte(counted).sql("postgresql")[0]
    for compiled in statements.SQLITE_INSERTS.values():
        assert "ON CONFLICT" in compiled.sql("sqlite")[0] and ":" in compiled.sql("sqlite")[0]
    for compiled in (statements.COMPILED_TOUCH, statements.COMPILED_COUNT_LEAD, statements.COMPILED_TOUCH_KEY):
        assert ":" in compiled.sql("sqlite")[0] and "%(" in compiled.sql("postgresql")[0]


def test_the_sqlite_writer_lock_excludes_other_processes(tmp_path):
    """Hot-path writers queue on an flock beside the database; a forked worker opens its own descriptor (an
    inherited one would share the parent's lock and exclude nothing)."""
    database = str(tmp_path / "locks.db")
    fd, _ = store.writer_lock(database)  # opened before the fork, as in a gunicorn master
    locked_r, locked_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the other worker
        try:
            with store.SqliteWriter(database):
                os.write(locked_w, b"1")
                os.read(release_r, 1)
        finally:
            os._exit(0)
    try:
        os.read(locked_r, 1)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.write(release_w, b"1")
        os.waitpid(pid, 0)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    fcntl.flock(fd, fcntl.LOCK_UN)


def test_sqlite_checkpoints_run_off_the_request_path(tmp_path):
    """On a SQLite file the store's connections never checkpoint inside a commit (wal_autocheckpoint=0);
    this process's checkpointer thread copies the log into the database file soon after."""
    database = tmp_path / "ckpt.db"
    app = create_app(type("CheckpointConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"}))
    with app.app_context():
        db.create_all()
        world = factories.world()
        db.session.remove()
    _first_messages(app, world, "ck", 5)
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            assert raw.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        finally:
            raw.close()
        checkpointer = wal_checkpoint.checkpointer(str(database))
        assert checkpointer.is_alive()

        def in_database_file(query: str = "SELECT count(*) FROM messages") -> object:
            reader = sqlite3.connect(f"file:{database}?immutable=1", uri=True)  # the main file only, never the log
            try:
                return reader.execute(query).fetchone()[0]
            except sqlite3.DatabaseError:  # read while a checkpoint was writing the file, or no table yet
                return None
            finally:
                reader.close()

        def eventually(query: str, expected: object) -> object:
            deadline = time.monotonic() + 10
            while (found := in_database_file(query)) != expected and time.monotonic() < deadline:
                time.sleep(0.05)
            return found

        assert eventually("SELECT count(*) FROM messages", 5) == 5 and checkpointer.checkpoints >= 1
        # A commit of the ORM's on those connections (no runtime message wakes the thread): checkpointed too.
        db.session.execute(sa.text("UPDATE agents SET name = 'Renamed' WHERE id = :id"), {"id": world.agent_id})
        db.session.commit()
        query = f"SELECT name FROM agents WHERE id = {int(world.agent_id)}"
        assert eventually(query, "Renamed") == "Renamed"
        db.engine.dispose()


def _greeted(client, world, conversation: str, visitor: str) -> None:
    """An agent's greeting opens the conversation: it exists, unstamped, before the visitor's first message."""
    with client.application.app_context():
        factories.experiment(world.agent_id, weights=(1, 1), status="running")
    response = client.post(f"/api/v1/agents/{world.agent_id}/messages", headers={
        "Authorization": f"Bearer {world.api_key}"}, json={"visitor_id": visitor, "conversation_id": conversation,
                                                           "role": "agent", "text": "Hello!"})
    assert response.status_code == 201 and response.get_json()["variant"] is None


@pytest.mark.parametrize("opened", ["by this message", "by a greeting"])
def test_a_reply_is_sent_as_stored_and_replayed_byte_for_byte(app, client, world, opened):
    """The reply is serialised once: the body sent is the message's stored response, and a replay of its
    message_id sends those same bytes — whether the message opened the conversation (one statement on PostgreSQL)
    or stamped one an agent's greeting opened (a checked transaction)."""
    if opened == "by a greeting":
        _greeted(client, world, "bytes-c", "bytes-v")
    send = {"visitor_id": "bytes-v", "conversation_id": "bytes-c", "role": "visitor", "message_id": "bytes-m",
            "text": "Ünïcode ✓"}
    headers = {"Authorization": f"Bearer {world.api_key}"}
    first = client.post(f"/api/v1/agents/{world.agent_id}/messages", headers=headers, json=send)
    again = client.post(f"/api/v1/agents/{world.agent_id}/messages", headers=headers, json=send)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.mimetype == again.mimetype == "application/json"
    assert again.get_data() == first.get_data()
    with app.app_context():
        stored = db.session.execute(sa.select(sa.cast(sa.column("response"), sa.Text)).select_from(
            sa.table("messages", sa.column("response"), sa.column("client_message_id")))
            .where(sa.column("client_message_id") == "bytes-m")).scalar_one()
        db.session.remove()
    assert first.get_data(as_text=True) == stored + "\n"
    assert first.get_json()["conversation_id"] == "bytes-c"


@pytest.mark.parametrize("opened", ["by this message", "by a greeting"])
def test_a_replay_sends_the_stored_reply_without_parsing_it(app, client, world, monkeypatch, opened):
    """The stored text is what a replay sends: decoding it first would only cost the retry time (and memory)."""
    if opened == "by a greeting":
        _greeted(client, world, "parse-c", "parse-v")
    send = {"visitor_id": "parse-v", "conversation_id": "parse-c", "role": "visitor", "message_id": "parse-m",
            "text": "hello"}
    headers = {"Authorization": f"Bearer {world.api_key}"}
    first = client.post(f"/api/v1/agents/{world.agent_id}/messages", headers=headers, json=send)
    assert first.status_code == 201

    def no_parsing(*args, **kwargs):
        raise AssertionError("the stored reply was parsed")
    monkeypatch.setattr(runtime, "json", SimpleNamespace(loads=no_parsing, dumps=json.dumps))
    again = client.post(f"/api/v1/agents/{world.agent_id}/messages", headers=headers, json=send)
    assert again.status_code == 200 and again.get_data() == first.get_data()
    with app.app_context():
        replayed = runtime.record_message(world.workspace_id, world.agent_id, send)
        db.session.remove()
    assert replayed.replayed and replayed.text + "\n" == first.get_data(as_text=True)
