"""POST …/conversations/{conversation_id}/feedback (SPEC §12): statuses, replacement, the stamp, validation."""
from __future__ import annotations

from urllib.parse import quote

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Feedback


@pytest.fixture
def api(client, world):
    headers = {"Authorization": f"Bearer {world.api_key}"}

    class Api:
        def message(self, conversation_id="c1", visitor_id="v1", role="visitor", agent_id=None):
            return client.post(f"/api/v1/agents/{agent_id or world.agent_id}/messages", headers=headers,
                               json={"visitor_id": visitor_id, "conversation_id": conversation_id, "role": role,
                                     "text": "hello"})

        def feedback(self, body, conversation_id="c1", agent_id=None, key=None, **kwargs):
            url = f"/api/v1/agents/{agent_id or world.agent_id}/conversations/{quote(conversation_id, safe='')}/feedback"
            auth = {"Authorization": f"Bearer {key or world.api_key}"}
            if "data" in kwargs:
                return client.post(url, headers={**auth, "Content-Type": "application/json"}, **kwargs)
            return client.post(url, headers=auth, json=body)

    return Api()


def feedback_rows(app) -> list[Feedback]:
    with app.app_context():
        found = list(db.session.scalars(sa.select(Feedback).order_by(Feedback.id)))
        db.session.expunge_all()
        db.session.remove()
        return found


def test_new_feedback_is_201_and_carries_the_stamp(app, world, api):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, status="running")
    stamped = api.message().get_json()
    response = api.feedback({"visitor_id": "v1", "rating": "up", "comment": "Très utile 👍",
                             "given_at": "2026-11-30T10:00:00+01:00"})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["rating"] == "up" and body["comment"] == "Très utile 👍" and body["conversation_id"] == "c1"
    assert body["variant"] == stamped["variant"] and body["given_at"] == "2026-11-30T09:00:00+00:00"
    (row,) = feedback_rows(app)
    assert (row.experiment_id, row.variant_id, row.variant_key) == (
        experiment_id, stamped["variant"]["id"], stamped["variant"]["key"])
    assert row.visitor_id == "v1" and row.id == body["feedback_id"]


def test_a_later_feedback_replaces_the_earlier_with_200(app, world, api):
    api.message()
    first = api.feedback({"visitor_id": "v1", "rating": "up", "comment": "good"})
    again = api.feedback({"visitor_id": "v1", "rating": "down"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["feedback_id"] == first.get_json()["feedback_id"]
    (row,) = feedback_rows(app)
    assert (row.rating, row.comment) == ("down", "")


def test_unstamped_conversation_feedback_has_no_variant(app, world, api):
    api.message()
    body = api.feedback({"visitor_id": "v1", "rating": "down"}).get_json()
    assert body["variant"] is None
    assert feedback_rows(app)[0].variant_id is None


def test_unknown_conversation_is_404_and_another_visitors_is_409(app, world, api):
    api.message()
    missing = api.feedback({"visitor_id": "v1", "rating": "up"}, conversation_id="nope")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    other = api.feedback({"visitor_id": "someone-else", "rating": "up"})
    assert other.status_code == 409 and "conversation_id" in other.get_json()["error"]["fields"]
    assert feedback_rows(app) == []


def test_another_workspaces_agent_and_conversation_are_404(app, world, api):
    api.message(agent_id=None)
    # The other workspace's key does not see acme's agent…
    assert api.feedback({"visitor_id": "v1", "rating": "up"}, key=world.other_api_key).status_code == 404
    # …and acme's key does not see the other agent.
    assert api.feedback({"visitor_id": "v1", "rating": "up"}, agent_id=world.other_agent_id).status_code == 404
    assert feedback_rows(app) == []


def test_no_key_is_401(client, world):
    response = client.post(f"/api/v1/agents/{world.agent_id}/conversations/c1/feedback",
                           json={"visitor_id": "v1", "rating": "up"})
    assert response.status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"rating": "up"}, "visitor_id"),
    ({"visitor_id": "v1"}, "rating"),
    ({"visitor_id": "v1", "rating": "meh"}, "rating"),
    ({"visitor_id": "v1", "rating": 1}, "rating"),
    ({"visitor_id": "v1", "rating": "up", "comment": "x" * 2001}, "comment"),
    ({"visitor_id": "v1", "rating": "up", "comment": 5}, "comment"),
    ({"visitor_id": "v1", "rating": "up", "comment": "a\x00b"}, "comment"),
    ({"visitor_id": "v1", "rating": "up", "given_at": "yesterday"}, "given_at"),
    ({"visitor_id": "v1", "rating": "up", "given_at": "2026-11-30T10:00:00"}, "given_at"),
    ({"visitor_id": "v\x01", "rating": "up"}, "visitor_id"),
])
def test_bad_bodies_are_422_naming_the_field_and_write_nothing(app, world, api, body, field):
    api.message()
    response = api.feedback(body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert feedback_rows(app) == []


def test_comment_of_exactly_2000_characters_is_accepted(app, world, api):
    api.message()
    assert api.feedback({"visitor_id": "v1", "rating": "up", "comment": "é" * 2000}).status_code == 201


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"\"up\"", b""])
def test_malformed_bodies_are_400(app, world, api, data):
    api.message()
    assert api.feedback(None, data=data).status_code == 400
    assert feedback_rows(app) == []


def test_conversation_ids_with_slashes_and_unicode_work(app, world, api):
    api.message(conversation_id="/chat/ü 1")
    assert api.feedback({"visitor_id": "v1", "rating": "up"}, conversation_id="/chat/ü 1").status_code == 201


def test_feedback_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/agents/{agent_id}/conversations/{conversation_id}/feedback"]["post"]
    assert operation["operationId"] == "postFeedback"
    assert {"200", "201", "400", "401", "404", "409", "413", "422"} <= set(operation["responses"])
