"""The blinded review page (SPEC §12): nothing names the arm, roles, the POST flow."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from tests.views.test_roles import snapshot
from webapp.extensions import db
from webapp.models import Conversation, Experiment, Message, Review, utcnow

KEYS = ["zetakey", "omegakey"]
NAMES = ["Zetaform Variant", "Omegastyle Variant"]
PERSONAS = ["Quillon", "Basilio"]


@pytest.fixture
def blinded(app, world):
    """A running persona experiment whose agent messages name their persona (and the agent's default, Sam)."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running", weights=(37, 63), keys=KEYS,
                                      name="Quillon vs Basilio",
                                      configs=[{"persona": {"name": p, "tone": f"tone-{p}"}} for p in PERSONAS])
        exp = db.session.get(Experiment, exp_id)
        for variant, key, name in zip(exp.variants, KEYS, NAMES):
            variant.name = name
        now = utcnow()
        for variant, persona in zip(exp.variants, PERSONAS):
            for i in range(3):
                c = Conversation(agent_id=world.agent_id, external_id=f"c-{i}-{persona.lower()}x",
                                 visitor_id=f"visitor-{i}", experiment_id=exp_id, variant_id=variant.id,
                                 variant_key=variant.key, started_at=now, last_message_at=now)
                db.session.add(c)
                db.session.flush()
                db.session.add_all([
                    Message(conversation_id=c.id, role="visitor", text=f"Hello {persona.upper()}?", sent_at=now),
                    Message(conversation_id=c.id, role="agent", sent_at=now + timedelta(seconds=2),
                            text=f"Hi, I'm {persona}! {persona.lower()} is glad to help. Sam says hi too."),
                ])
        db.session.commit()
        db.session.remove()
    return exp_id


def url(world, experiment_id):
    return f"/agents/{world.agent_id}/experiments/{experiment_id}/review"


def assert_blinded(html):
    """The transcript shown, masked, and nothing that names its arm: no variant key or name, persona, tone,
    system prompt, weight (37/63) or share."""
    assert "Hi, I&#39;m Assistant! Assistant is glad to help. Assistant says hi too." in html
    lowered = html.lower()
    for secret in KEYS + NAMES + PERSONAS + ["tone-quillon", "tone-basilio"]:
        assert secret.lower() not in lowered, secret
    assert "the assistant of" not in html and not re.search(r"\b(37|63)(\.0)?\s?%", html)
    assert 'value="37"' not in html and 'value="63"' not in html


def test_the_page_names_no_variant_key_name_or_persona(client, auth, world, blinded):
    auth.login(world.emails["editor"])
    for _ in range(4):  # a few draws, from both arms
        response = client.get(url(world, blinded))
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert_blinded(html)
        assert "You have rated 0 conversations" in html


def test_the_next_card_and_the_422_card_name_no_variant_key_name_or_persona(client, auth, world, blinded):
    """The HTMX answers of the POST carry a transcript too: the next card after each rating (until every
    conversation has been rated, so both arms' are seen) and the card a bad rating comes back with."""
    auth.login(world.emails["editor"])
    conversation_id = re.search(r'name="conversation_id" value="(\d+)"',
                                client.get(url(world, blinded)).get_data(as_text=True)).group(1)
    for rated in range(1, 6):  # six conversations: five answers leave one card to draw
        bad = auth.post(url(world, blinded), {"conversation_id": conversation_id, "rating": "great"},
                        headers={"HX-Request": "true"})
        assert bad.status_code == 422 and 'data-field="rating"' in bad.get_data(as_text=True)
        assert_blinded(bad.get_data(as_text=True))
        response = auth.post(url(world, blinded), {"conversation_id": conversation_id, "rating": "good"},
                             headers={"HX-Request": "true"})
        card = response.get_data(as_text=True)
        assert response.status_code == 200 and f"You have rated {rated} conversation" in card
        assert_blinded(card)
        conversation_id = re.search(r'name="conversation_id" value="(\d+)"', card).group(1)
    full = auth.post(url(world, blinded), {"conversation_id": conversation_id, "rating": ""})  # a whole page
    assert full.status_code == 422
    assert_blinded(full.get_data(as_text=True))


@pytest.mark.parametrize("role", ["owner", "admin", "editor"])
def test_every_member_may_review(client, auth, world, blinded, role):
    auth.login(world.emails[role])
    html = client.get(url(world, blinded)).get_data(as_text=True)
    conversation_id = re.search(r'name="conversation_id" value="(\d+)"', html).group(1)
    response = auth.post(url(world, blinded), {"conversation_id": conversation_id, "rating": "good"})
    assert response.status_code == 303
    assert "You have rated 1 conversation of" in client.get(url(world, blinded)).get_data(as_text=True)


def test_non_members_and_other_experiments_get_404(app, client, auth, world, blinded):
    with app.app_context():
        theirs = factories.experiment(world.other_agent_id, status="running")
        db.session.remove()
    auth.login(world.emails["outsider"])
    assert client.get(url(world, blinded)).status_code == 404
    assert auth.post(url(world, blinded), {"conversation_id": "1", "rating": "good"}).status_code == 404
    auth.logout()
    auth.login(world.emails["editor"])
    assert client.get(url(world, theirs)).status_code == 404
    assert client.get(url(world, 999_999)).status_code == 404


def test_htmx_post_answers_the_next_card_and_the_count_moves(app, client, auth, world, blinded):
    auth.login(world.emails["editor"])
    html = client.get(url(world, blinded)).get_data(as_text=True)
    first = re.search(r'name="conversation_id" value="(\d+)"', html).group(1)
    response = auth.post(url(world, blinded), {"conversation_id": first, "rating": "bad", "note": "curt"},
                         headers={"HX-Request": "true"})
    card = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in card and 'id="review"' in card
    assert "You have rated 1 conversation of this experiment." in card
    assert re.search(r'name="conversation_id" value="(\d+)"', card).group(1) != first
    with app.app_context():
        assert [(r.rating, r.note) for r in db.session.scalars(sa.select(Review))] == [("bad", "curt")]


def test_bad_input_comes_back_with_field_errors_and_writes_nothing(app, client, auth, world, blinded):
    auth.login(world.emails["editor"])
    html = client.get(url(world, blinded)).get_data(as_text=True)
    conversation_id = re.search(r'name="conversation_id" value="(\d+)"', html).group(1)
    before = snapshot(app)
    response = auth.post(url(world, blinded), {"conversation_id": conversation_id, "rating": "great",
                                                "note": "n" * 2001}, headers={"HX-Request": "true"})
    card = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'data-field="rating"' in card and 'data-field="note"' in card
    assert f'name="conversation_id" value="{conversation_id}"' in card  # the same conversation
    assert auth.post(url(world, blinded), {"conversation_id": "not-a-number", "rating": "good"}).status_code == 404
    assert auth.post(url(world, blinded), {"rating": "good"}).status_code == 422
    assert snapshot(app) == before


def test_the_post_needs_csrf(client, auth, world, blinded):
    auth.login(world.emails["editor"])
    response = client.post(url(world, blinded), data={"conversation_id": "1", "rating": "good"})
    assert response.status_code == 400


def test_the_experiment_page_links_to_the_review(client, auth, world, blinded):
    auth.login(world.emails["editor"])
    html = client.get(f"/agents/{world.agent_id}/experiments/{blinded}").get_data(as_text=True)
    assert f'href="{url(world, blinded)}"' in html
