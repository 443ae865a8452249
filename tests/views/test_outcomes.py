"""Stop, Record outcome and Promote over HTTP: in-page confirmations with the outcome and a note (SPEC §10.6)."""
from __future__ import annotations

import pytest

from tests.views.test_experiments import make
from webapp.extensions import db
from webapp.models import Experiment

HX = {"HX-Request": "true"}


@pytest.fixture
def owner(auth, world):
    assert auth.login(world.emails["owner"]).status_code == 302
    return auth


def outcome_of(app, exp_id):
    with app.app_context():
        e = db.session.get(Experiment, exp_id)
        found = (e.status, e.outcome_result, e.outcome_variant_key, e.outcome_note)
        db.session.remove()
        return found


def url(world, exp_id, action=""):
    return f"/agents/{world.agent_id}/experiments/{exp_id}" + (f"/{action}" if action else "")


def test_stop_opens_an_in_page_confirmation_asking_for_the_outcome(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    page = client.get(url(world, exp_id)).get_data(as_text=True)
    assert "?confirm=stop" in page and f'action="{url(world, exp_id, "stop")}"' not in page  # Stop asks first
    fragment = client.get(url(world, exp_id) + "?confirm=stop", headers=HX).get_data(as_text=True)
    assert 'role="alertdialog"' in fragment and f'hx-post="{url(world, exp_id, "stop")}"' in fragment
    for value in ("shipped:treatment", "kept_control", "inconclusive"):
        assert f'name="outcome" value="{value}"' in fragment
    assert 'value="shipped:control"' not in fragment  # the control is kept, not shipped
    assert 'name="outcome" value="" checked' in fragment and 'name="note"' in fragment
    assert "Shipped Treatment" in fragment and "Kept the control (Control)" in fragment


def test_stop_with_an_outcome_records_it_and_says_so(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    response = owner.post(url(world, exp_id, "stop"), {"outcome": "shipped:treatment", "note": "Big win"}, headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Outcome recorded: Shipped Treatment." in html
    assert 'id="outcome"' in html and "Big win" in html and "Record outcome" not in html
    assert outcome_of(app, exp_id) == ("stopped", "shipped", "treatment", "Big win")
    listing = client.get(f"/agents/{world.agent_id}/experiments").get_data(as_text=True)
    assert "Shipped Treatment" in listing


def test_stop_without_an_outcome_records_none(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    assert owner.post(url(world, exp_id, "stop")).status_code == 302
    assert outcome_of(app, exp_id) == ("stopped", None, None, None)
    assert "Record outcome…" in client.get(url(world, exp_id)).get_data(as_text=True)


def test_a_bad_outcome_comes_back_in_the_open_confirmation_as_typed(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    response = owner.post(url(world, exp_id, "stop"), {"outcome": "shipped:nope", "note": "kept <b>text</b>"},
                          headers=HX)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'role="alertdialog"' in html and 'id="outcome-error"' in html and "“nope” is not a variant" in html
    assert "kept &lt;b&gt;text&lt;/b&gt;</textarea>" in html
    assert outcome_of(app, exp_id) == ("running", None, None, None)
    # Without HTMX: the page itself, 422, with the confirmation open.
    response = owner.post(url(world, exp_id, "stop"), {"outcome": "inconclusive", "note": "x" * 2001})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="note-error"' in html and "<h2>Variants</h2>" in html
    assert outcome_of(app, exp_id) == ("running", None, None, None)


def test_record_outcome_after_a_stop(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="stopped")
    fragment = client.get(url(world, exp_id) + "?confirm=outcome", headers=HX).get_data(as_text=True)
    assert f'hx-post="{url(world, exp_id, "outcome")}"' in fragment
    response = owner.post(url(world, exp_id, "outcome"), {"outcome": "kept_control"}, headers=HX)
    assert response.status_code == 200 and "Kept the control (Control)" in response.get_data(as_text=True)
    assert outcome_of(app, exp_id) == ("stopped", "kept_control", None, None)
    assert owner.post(url(world, exp_id, "outcome"), {"outcome": "bad"}, headers=HX).status_code == 422


@pytest.mark.parametrize("headers", [HX, {}], ids=["htmx", "page"])
@pytest.mark.parametrize("status, action, message", [
    ("running", "outcome", "Only a stopped experiment has an outcome; “Exp” is running."),
    ("draft", "outcome", "Only a stopped experiment has an outcome; “Exp” is draft."),
    ("stopped", "stop", "Only a running experiment can be stopped; “Exp” is stopped."),
])
@pytest.mark.parametrize("outcome", ["kept_control", "bad", "shipped:nope"])
def test_an_outcome_posted_in_the_wrong_status_says_why(app, client, owner, world, headers, status,
                                                                  action, message, outcome):
    """A stale or crafted form: was a 422 with the status panel and no error text for a bad outcome (the
    confirmation its errors belong to cannot open in that status)."""
    exp_id = make(app, world.agent_id, status=status, name="Exp")
    response = owner.post(url(world, exp_id, action), {"outcome": outcome}, headers=headers,
                          follow_redirects=not headers)  # a page's POST: back to the page, the message flashed
    assert response.status_code == (409 if headers else 200) and message in response.get_data(as_text=True)
    assert outcome_of(app, exp_id) == (status, None, None, None)


def test_an_editor_cannot_record_an_outcome(app, client, auth, world):
    exp_id = make(app, world.agent_id, status="stopped")
    auth.login(world.emails["editor"])
    assert auth.post(url(world, exp_id, "outcome"), {"outcome": "inconclusive"}, headers=HX).status_code == 403
    assert outcome_of(app, exp_id) == ("stopped", None, None, None)


def test_promote_confirms_in_the_page_and_records_shipped(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    page = client.get(url(world, exp_id)).get_data(as_text=True)
    assert "hx-confirm" not in page and "data-confirm" not in page  # no browser confirm() any more
    fragment = client.get(url(world, exp_id) + "?confirm=promote&variant=treatment",
                          headers=HX).get_data(as_text=True)
    assert "Promote Treatment?" in fragment and 'name="variant" value="treatment"' in fragment
    assert "Shipped Treatment" in fragment and 'name="note"' in fragment
    response = owner.post(url(world, exp_id, "promote"), {"variant": "treatment", "note": "Ship it"}, headers=HX)
    html = response.get_data(as_text=True)
    assert "Treatment promoted: the agent now answers as Persona treatment" in html
    assert "Variant “treatment”" not in html  # names, not keys
    assert outcome_of(app, exp_id) == ("stopped", "shipped", "treatment", "Ship it")


def test_promote_with_a_long_note_is_refused_in_its_confirmation(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running")
    response = owner.post(url(world, exp_id, "promote"), {"variant": "treatment", "note": "x" * 2001}, headers=HX)
    assert response.status_code == 422 and 'id="note-error"' in response.get_data(as_text=True)
    assert outcome_of(app, exp_id) == ("running", None, None, None)


def test_the_promote_menu_names_arms_once_and_marks_the_current_default(app, client, owner, world):
    exp_id = make(app, world.agent_id, status="running",
                  configs=[{"persona": {"name": "Sam", "tone": "friendly"}},
                           {"persona": {"name": "Aria", "tone": "warm"}}])
    with app.app_context():
        for v, name in zip(db.session.get(Experiment, exp_id).variants, ("Sam", "Aria")):
            v.name = name
        db.session.commit()
        db.session.remove()
    page = client.get(url(world, exp_id)).get_data(as_text=True)
    assert '<option value="control">Sam (default)</option>' in page
    assert '<option value="treatment">Aria</option>' in page
    owner.post(url(world, exp_id, "promote"), {"variant": "treatment"})
    page = client.get(url(world, exp_id)).get_data(as_text=True)
    assert '<option value="treatment">Aria (default)</option>' in page
    assert '<option value="control">Sam</option>' in page
