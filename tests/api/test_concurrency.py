"""32 simultaneous first messages for one visitor against a live threaded server, on SQLite and PostgreSQL.

Correctness comes from unique constraints + INSERT … ON CONFLICT DO NOTHING, not from Python locks.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from tests import factories
from tests.databases import own_database
from webapp import create_app
from webapp.config import TestConfig
from webapp.extensions import db
from webapp.models import Conversation, ExperimentAssignment, Lead, Message

N = 32


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, tmp_path_factory):
    """A live threaded server on 127.0.0.1 with its own database, the world and a running experiment."""
    url, drop = own_database(request.param, tmp_path_factory, "race")
    app = create_app(type("RaceConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": N, "max_overflow": 8}}))
    with app.app_context():
        db.create_all()
        world = factories.world()
        factories.experiment(world.agent_id, weights=(1, 1, 1), status="running")
        db.session.remove()
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield app, world, f"http://127.0.0.1:{http.server_port}/api/v1/agents/{world.agent_id}/messages"
    http.shutdown()
    thread.join()
    with app.app_context():
        db.engine.dispose()
    drop()


def fire(server, bodies: list[dict], endpoint: str = "messages") -> list[requests.Response]:
    """Post all bodies at once to the agent's `endpoint`: every thread waits at a barrier, then sends."""
    _, world, url = server
    url = url.rsplit("/", 1)[0] + "/" + endpoint
    barrier = threading.Barrier(len(bodies))
    headers = {"Authorization": f"Bearer {world.api_key}"}

    def send(body):
        barrier.wait()
        return requests.post(url, json=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


def count(app, model, *where) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
        db.session.remove()
        return n


def test_same_conversation_one_assignment_one_conversation_one_variant(server):
    app, _, _ = server
    responses = fire(server, [{"visitor_id": "race-1", "conversation_id": "race-c1", "role": "visitor",
                               "text": f"hello {i}"} for i in range(N)])
    assert [r.status_code for r in responses] == [201] * N
    assert len({r.json()["variant"]["id"] for r in responses}) == 1
    assert count(app, ExperimentAssignment, ExperimentAssignment.visitor_id == "race-1") == 1
    assert count(app, Conversation, Conversation.external_id == "race-c1") == 1
    assert count(app, Message, Message.conversation_id.in_(
        sa.select(Conversation.id).where(Conversation.external_id == "race-c1"))) == N


def test_different_conversations_one_assignment_one_variant(server):
    app, _, _ = server
    responses = fire(server, [{"visitor_id": "race-2", "conversation_id": f"race-2-c{i}", "role": "visitor"}
                              for i in range(N)])
    assert [r.status_code for r in responses] == [201] * N
    assert len({r.json()["variant"]["id"] for r in responses}) == 1
    assert count(app, ExperimentAssignment, ExperimentAssignment.visitor_id == "race-2") == 1
    assert count(app, Conversation, Conversation.visitor_id == "race-2") == N
    with app.app_context():
        stamps = set(db.session.scalars(sa.select(Conversation.variant_id).where(Conversation.visitor_id == "race-2")))
        db.session.remove()
    assert stamps == {responses[0].json()["variant"]["id"]}


def test_racing_replays_of_one_message_id_write_one_message(server):
    app, _, _ = server
    body = {"visitor_id": "race-3", "conversation_id": "race-3-c", "role": "visitor", "message_id": "race-m"}
    responses = fire(server, [body] * N)
    assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201]
    assert len({r.text for r in responses}) == 1
    assert count(app, Message, Message.client_message_id == "race-m") == 1
    assert count(app, ExperimentAssignment, ExperimentAssignment.visitor_id == "race-3") == 1


def test_racing_retries_of_one_lead_write_one_lead(server):
    app, _, _ = server
    assert fire(server, [{"visitor_id": "race-4", "conversation_id": "race-4-c", "role": "visitor"}])[0].ok
    body = {"visitor_id": "race-4", "conversation_id": "race-4-c", "idempotency_key": "race-lead"}
    responses = fire(server, [body] * N, endpoint="leads")
    assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201]
    assert len({r.json()["lead_id"] for r in responses}) == 1
    assert count(app, Lead, Lead.idempotency_key == "race-lead") == 1
    assert count(app, Conversation, Conversation.external_id == "race-4-c", Conversation.lead_count == 1) == 1
