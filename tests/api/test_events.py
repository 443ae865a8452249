"""POST /api/v1/agents/{agent_id}/events (SPEC §13): statuses, the conversation's stamp, event_id idempotency."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests import factories
from tests.api.test_runtime_api import api, error, rows  # noqa: F401 (api is a fixture)
from webapp.extensions import db
from webapp.models import Conversation, GoalEvent


@pytest.fixture
def running(app, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, kind="cta", status="running",
                                             configs=[{}, {"cta": {"label": "Book", "url": "https://a.test/b"}}])
        db.session.remove()
    return experiment_id


def event(runtime, **body):
    return runtime.client.post(runtime.url("events"), headers=runtime.headers,
                               json={"visitor_id": "v1", "conversation_id": "c1", "name": "booked_demo", **body})


@pytest.fixture
def events_api(api, client):  # noqa: F811 (the imported fixture)
    api.client = client
    return api


def test_an_event_carries_the_conversations_stamp_and_answers_201(app, events_api, running):
    assert events_api.message().status_code == 201
    reply = event(events_api, occurred_at="2026-11-30T10:00:00+01:00", event_id="e-1")
    assert reply.status_code == 201
    body = reply.get_json()
    with app.app_context():
        conversation = db.session.scalar(sa.select(Conversation))
        stored = db.session.scalar(sa.select(GoalEvent))
        db.session.remove()
    assert body["variant"]["id"] == conversation.variant_id and body["variant"]["key"] == conversation.variant_key
    assert (body["event_id"], body["name"], body["conversation_id"]) == ("e-1", "booked_demo", "c1")
    assert body["occurred_at"] == "2026-11-30T09:00:00+00:00"
    assert (stored.experiment_id, stored.variant_id, stored.variant_key, stored.visitor_id) == (
        running, conversation.variant_id, conversation.variant_key, "v1")


def test_a_retry_of_an_event_id_answers_200_with_the_first_answer_and_writes_nothing(app, events_api, running):
    events_api.message()
    first = event(events_api, event_id="e-1", occurred_at="2026-11-30T10:00:00Z")
    again = event(events_api, event_id="e-1")  # no occurred_at: not compared, the first one's stays
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json() == first.get_json()
    assert rows(app, GoalEvent) == 1


def test_an_event_id_reused_for_another_goal_is_a_409_naming_it(app, events_api, running):
    events_api.message()
    assert event(events_api, event_id="e-1").status_code == 201
    fields = error(event(events_api, event_id="e-1", name="asked_price"), 409, "conflict")
    assert list(fields) == ["event_id"]
    assert rows(app, GoalEvent) == 1
    events_api.message({"visitor_id": "v1", "conversation_id": "c2", "role": "visitor"})
    assert event(events_api, event_id="e-1", conversation_id="c2").status_code == 201  # keys are per conversation


def test_without_an_event_id_each_report_is_a_new_event(app, events_api, running):
    events_api.message()
    first, second = event(events_api), event(events_api)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.get_json()["event_id"] != second.get_json()["event_id"] and rows(app, GoalEvent) == 2


def test_the_conversation_must_exist_and_be_the_visitors(app, events_api, running):
    assert list(error(event(events_api), 404, "not_found")) == ["conversation_id"]
    events_api.message()
    assert list(error(event(events_api, visitor_id="v2"), 409, "conflict")) == ["conversation_id"]
    assert rows(app, GoalEvent) == 0


def test_an_unstamped_conversation_gives_an_unstamped_event(app, events_api):
    events_api.message()  # no experiment runs
    reply = event(events_api)
    assert reply.status_code == 201 and reply.get_json()["variant"] is None


@pytest.mark.parametrize("body,field", [
    ({"name": ""}, "name"), ({"name": "Booked_Demo"}, "name"), ({"name": "booked demo"}, "name"),
    ({"name": "x" * 61}, "name"), ({"name": None}, "name"), ({"name": 5}, "name"), ({"name": "ü"}, "name"),
    ({"occurred_at": "yesterday"}, "occurred_at"), ({"occurred_at": "1999-12-31T23:59:59Z"}, "occurred_at"),
    ({"occurred_at": "2026-01-01 10:00:00+00:00"}, "occurred_at"),
    ({"event_id": ""}, "event_id"), ({"event_id": "x" * 201}, "event_id"), ({"visitor_id": 1}, "visitor_id"),
    ({"conversation_id": "a\nb"}, "conversation_id"),
])
def test_bad_fields_are_a_422_naming_them(app, events_api, running, body, field):
    events_api.message()
    assert field in error(event(events_api, **body), 422, "validation_error")
    assert rows(app, GoalEvent) == 0


def test_names_at_the_limits_are_taken(events_api, running):
    events_api.message()
    for name in ("a", "x" * 60, "checkout.completed", "plan-2_upgrade"):
        assert event(events_api, name=name).status_code == 201


def test_keys_and_agents(client, world, events_api):
    no_key = client.post(events_api.url("events"), json={})
    error(no_key, 401, "unauthorized")
    other = client.post(events_api.url("events", world.other_agent_id), headers=events_api.headers,
                        json={"visitor_id": "v1", "conversation_id": "c1", "name": "x"})
    error(other, 404, "not_found")
    error(client.post(events_api.url("events"), data="[1]", headers=events_api.headers), 400, "bad_request")
