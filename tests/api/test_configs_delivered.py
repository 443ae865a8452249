"""SPEC §13: every runtime answer that names a variant carries variant.config; a CTA prompt adds its line to the
system prompt — in POST …/messages, GET …/persona and GET …/assignment alike, and in the visitor preview."""
from __future__ import annotations

import json

import pytest

from tests import factories
from tests.api.test_runtime_api import api  # noqa: F401 (a fixture)
from webapp.extensions import db
from webapp.models import Experiment

CTA = {"cta": {"label": "Book a demo", "url": "https://acme.test/demo", "prompt": "book a 15-minute demo"},
       "colour": "teal"}
LINE = "When it fits the conversation, invite the visitor to: book a 15-minute demo (Book a demo: https://acme.test/demo)"


@pytest.fixture
def cta_experiment(app, world):
    with app.app_context():
        experiment_id = factories.experiment(world.agent_id, kind="cta", status="running", weights=(1, 1),
                                             configs=[CTA, CTA])  # every visitor gets the CTA
        db.session.remove()
    return experiment_id


def test_the_three_answers_carry_the_config_and_the_prompt_line(api, cta_experiment):  # noqa: F811
    reply = api.message({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "Hi"})
    assert reply.status_code == 201
    body = reply.get_json()
    assert body["variant"]["config"] == CTA
    assert body["system_prompt"] == "You are Sam, the assistant of Acme. Tone: friendly.\nBe helpful.\n" + LINE
    persona = api.get("conversations/c1/persona").get_json()
    assert persona["variant"] == body["variant"] and persona["system_prompt"] == body["system_prompt"]
    assignment = api.get("visitors/v1/assignment").get_json()["assignment"]
    assert assignment["variant"] == body["variant"]
    replay = api.message({"visitor_id": "v1", "conversation_id": "c1", "role": "visitor", "text": "Hi",
                          "message_id": body["message_id"]})
    assert replay.status_code == 200 and json.loads(replay.get_data()) == body


def test_a_deleted_experiments_variant_has_no_config(app, api, cta_experiment):  # noqa: F811
    api.message()
    with app.app_context():
        experiment = db.session.get(Experiment, cta_experiment)
        experiment.status = "stopped"
        db.session.delete(experiment)
        db.session.commit()
        db.session.remove()
    persona = api.get("conversations/c1/persona").get_json()
    assert persona["variant"]["config"] is None and persona["variant"]["name"] is None
    assert "invite the visitor" not in persona["system_prompt"]


def test_a_persona_variant_carries_its_config_too_and_no_cta_line(app, api, world):  # noqa: F811
    with app.app_context():
        factories.experiment(world.agent_id, status="running")
        db.session.remove()
    body = api.message().get_json()
    assert body["variant"]["config"]["persona"]["name"] == body["persona"]["name"]
    assert "invite the visitor" not in body["system_prompt"]


def test_the_visitor_preview_shows_the_config_and_the_prompt_as_the_runtime_gets_them(client, auth, world,
                                                                                       cta_experiment):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{cta_experiment}/preview?visitor_id=v1",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert LINE in html
    assert '"url": "https://acme.test/demo"' in html and '"colour": "teal"' in html and 'id="preview-config"' in html
