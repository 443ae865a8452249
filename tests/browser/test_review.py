"""The blinded review in Chromium: an editor rates three conversations and the count moves; the transcript page."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Experiment, Review, utcnow
from webapp.services.runtime import service as runtime

from .axe import describe, violations
from .conftest import login


@pytest.fixture
def reviewable(app, world):
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running", name="Warmth", keys=["sam", "aria"],
                                      configs=[{"persona": {"name": "Sam"}}, {"persona": {"name": "Aria"}}])
        for i in range(6):
            cid, vid = f"chat-{i}", f"visitor-{i}"
            at = utcnow() - timedelta(minutes=30 - i)
            answer = runtime.record_message(world.workspace_id, world.agent_id, {
                "conversation_id": cid, "visitor_id": vid, "role": "visitor", "text": "Do you ship to Canada?",
                "sent_at": at.isoformat()}).body
            name = answer["persona"]["name"]
            runtime.record_message(world.workspace_id, world.agent_id, {
                "conversation_id": cid, "visitor_id": vid, "role": "agent",
                "text": f"Hi, I'm {name}! Yes, {name.upper()} can confirm we ship to Canada.",
                "sent_at": (at + timedelta(seconds=4)).isoformat()})
            if i % 2:
                runtime.record_feedback(world.workspace_id, world.agent_id, cid,
                                         {"visitor_id": vid, "rating": "up", "comment": "Quick answer, thanks!"})
        db.session.remove()
    return exp_id


@pytest.mark.parametrize("width", [1366, 390])
def test_an_editor_reviews_three_conversations_and_the_count_moves(app, page, world, shot, reviewable, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{reviewable}")
    page.click("text=Blinded review of the conversations")
    page.wait_for_url(f"**/experiments/{reviewable}/review")
    count = page.locator("#review-count")
    expect(count).to_have_text("You have rated 0 conversations of this experiment.")
    shot(page, f"{width}-start")
    good, bad = (page.locator(f".rating-choice label:has(input[value={v}])").bounding_box() for v in ("good", "bad"))
    note = page.locator("#review-note").bounding_box()
    assert abs(good["y"] - bad["y"]) < 2 and bad["x"] > good["x"] + good["width"] - 1  # side by side
    assert good["height"] >= 40 and note["y"] > good["y"] + good["height"]  # large targets, the note below them
    seen = set()
    for n in range(1, 4):
        agent_text = page.locator(".message-agent .message-text").first.inner_text()
        assert "Aria" not in agent_text and "Sam" not in agent_text and "ARIA" not in agent_text
        assert agent_text.startswith("Hi, I'm Assistant!")
        conversation = page.locator("input[name=conversation_id]").input_value()
        assert conversation not in seen
        seen.add(conversation)
        if n == 2:  # a submit without a rating comes back with the field's error, nothing saved
            page.click("button:has-text('Save and next')")
            expect(page.locator("p.error[data-field=rating]")).to_be_visible()
            expect(count).to_have_text("You have rated 1 conversation of this experiment.")
            shot(page, f"{width}-error")
        page.check("input[name=rating][value=good]" if n % 2 else "input[name=rating][value=bad]")
        page.fill("textarea[name=note]", f"note {n}")
        page.click("button:has-text('Save and next')")
        expect(count).to_have_text(f"You have rated {n} conversation{'' if n == 1 else 's'} of this experiment.")
    shot(page, f"{width}-after-three")
    with app.app_context():
        reviews = db.session.scalars(sa.select(Review).order_by(Review.id)).all()
        assert [r.note for r in reviews] == ["note 1", "note 2", "note 3"]
        assert {str(r.conversation_id) for r in reviews} == seen
        assert all(r.reviewer_id == world.editor_id for r in reviews)
        db.session.remove()
    # The results' Blinded review section counts them.
    page.goto(f"/agents/{world.agent_id}/experiments/{reviewable}/results")
    expect(page.locator("#blinded-review-results .review-totals")).to_contain_text("3 reviews by 1 reviewer")
    shot(page, f"{width}-results")


@pytest.mark.parametrize("width", [1366, 390])
def test_the_conversations_tab_and_a_transcript(app, page, world, shot, reviewable, width):
    page.set_viewport_size({"width": width, "height": 900})
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/conversations")
    expect(page.locator("#conversation-total")).to_have_text("6 conversations")
    shot(page, f"{width}-tab")
    page.click("#conversations tbody tr:first-child td:first-child a")
    expect(page.locator("#transcript-messages .message")).to_have_count(2)
    expect(page.locator("#transcript-persona")).to_contain_text("You are")
    shot(page, f"{width}-transcript")
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Conversation)) == 6
        assert db.session.get(Experiment, reviewable) is not None
        db.session.remove()


def test_save_without_a_rating_focuses_the_rating_choice(page, world, reviewable):
    """The error comes back on the radio group and the focus lands there (as on the experiment form), not on the card."""
    login(page, "editor@acme.test")
    page.goto(f"/agents/{world.agent_id}/experiments/{reviewable}/review")
    page.click("button:has-text('Save and next')")
    expect(page.locator("p.error[data-field=rating]")).to_have_text("Choose Good or Bad.")
    choice = page.locator("fieldset.rating-choice")
    expect(choice).to_be_focused()
    expect(choice).to_have_attribute("aria-describedby", "rating-error")
    found = violations(page)  # the marked group is valid ARIA (axe-core)
    assert found == [], describe(found)
    page.keyboard.press("Tab")  # the next stop is inside the group, on its first choice
    expect(page.locator("input[name=rating][value=good]")).to_be_focused()
