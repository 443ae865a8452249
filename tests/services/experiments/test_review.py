"""Blinded review (SPEC §12): the masking and the draw rules."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests import factories
from webapp.extensions import db
from webapp.models import Conversation, Experiment, Message, Review, utcnow
from webapp.services.errors import NotFound, ValidationError
from webapp.services.experiments import review


@pytest.mark.parametrize("text, expected", [
    ("Hi, I'm Aria!", "Hi, I'm Assistant!"),
    ("ARIA here. aria too, and Aria.", "Assistant here. Assistant too, and Assistant."),
    ("Ariadne and Marias stay", "Ariadne and Marias stay"),
    ("Aria's plan", "Assistant's plan"),
    ("(Aria)", "(Assistant)"),
    ("Aria_bot stays, Aria2 stays", "Aria_bot stays, Aria2 stays"),
    ("Sam, Samuel and SAM", "Assistant, Samuel and Assistant"),
    ("Zoë and ZOË, not Zoëlla", "Assistant and Assistant, not Zoëlla"),
    ("Zoe\u0308 decomposed", "Assistant decomposed"),
    ("Dr. Who? or Dr Who or DrX Who", "Assistant or Dr Who or DrX Who"),
    ("R2.D2 yes, R2xD2 no", "Assistant yes, R2xD2 no"),
    ("Aria Lee speaking, then Aria", "Assistant speaking, then Assistant"),
    ("Тамара и ТАМАРА, не Тамарочка", "Assistant и Assistant, не Тамарочка"),
    ("李雷 says hi", "Assistant says hi"),
    ("nothing to mask", "nothing to mask"),
])
def test_masking_whole_words_case_insensitive_any_script(text, expected):
    mask = review.masker(["Aria", "Sam", "Zoë", "Dr. Who?", "R2.D2", "Aria Lee", "Тамара", "李雷", "", "  "])
    assert mask(text) == expected


def test_a_name_with_regex_metacharacters_is_literal():
    mask = review.masker(["a+b", "(x)", ".*"])
    assert mask("a+b aab (x) x .* anything") == "Assistant aab Assistant x Assistant anything"


def test_no_names_masks_nothing():
    assert review.masker([])("Aria") == "Aria"


@pytest.fixture
def arms(app, world):
    """A running persona experiment with 3 arms and, in each, conversations with and without agent messages."""
    with app.app_context():
        exp_id = factories.experiment(world.agent_id, status="running", weights=(1, 1, 1))
        exp = db.session.get(Experiment, exp_id)
        by_arm: dict[int, list[int]] = {}
        now = utcnow()
        for variant in exp.variants:
            for i in range(4):
                c = Conversation(agent_id=world.agent_id, external_id=f"{variant.key}-{i}", visitor_id=f"v-{variant.key}-{i}",
                                 experiment_id=exp_id, variant_id=variant.id, variant_key=variant.key,
                                 started_at=now, last_message_at=now)
                db.session.add(c)
                db.session.flush()
                db.session.add(Message(conversation_id=c.id, role="visitor", text="hi", sent_at=now))
                if i < 3:  # the fourth has no agent message: never drawn
                    db.session.add(Message(conversation_id=c.id, role="agent", text="hello",
                                           sent_at=now + timedelta(seconds=1)))
                    by_arm.setdefault(variant.id, []).append(c.id)
        # A conversation of the agent outside the experiment, with an agent message: never drawn either.
        outside = Conversation(agent_id=world.agent_id, external_id="unstamped", visitor_id="v-x", started_at=now,
                               last_message_at=now)
        db.session.add(outside)
        db.session.flush()
        db.session.add(Message(conversation_id=outside.id, role="agent", text="hello", sent_at=now))
        db.session.commit()
        ids = {"experiment": exp_id, "arms": by_arm, "outside": outside.id,
               "no_agent": [c for c in db.session.scalars(sa.select(Conversation.id).where(
                   Conversation.external_id.like("%-3")))]}
        db.session.remove()
    return ids


def rate(world, arms, conversation_id, reviewer=None, rating="good", note=""):
    return review.submit_review(reviewer or world.editor_id, world.agent_id, arms["experiment"],
                                {"conversation_id": str(conversation_id), "rating": rating, "note": note})


def test_the_draw_never_repeats_a_rated_one_and_only_takes_conversations_with_an_agent_message(ctx, world, arms):
    reviewable = {c for ids in arms["arms"].values() for c in ids}
    seen = []
    page = review.next_review(world.editor_id, world.agent_id, arms["experiment"], random.Random(1))
    while page.conversation_id is not None:
        assert page.conversation_id in reviewable and page.conversation_id not in seen
        seen.append(page.conversation_id)
        page = rate(world, arms, page.conversation_id)
        assert page.rated == len(seen)
    assert sorted(seen) == sorted(reviewable)  # every reviewable one, then nothing left
    # Another reviewer still has all of them to rate.
    assert review.next_review(world.owner_id, world.agent_id, arms["experiment"]).conversation_id in reviewable


def test_the_draw_takes_the_arm_with_the_fewest_reviews(ctx, world, arms):
    arm_ids = list(arms["arms"])
    # The first two arms have reviews (by the owner), the third none: the editor's draw comes from the third.
    rate(world, arms, arms["arms"][arm_ids[0]][0], reviewer=world.owner_id)
    rate(world, arms, arms["arms"][arm_ids[1]][0], reviewer=world.owner_id)
    for seed in range(10):
        drawn = review.draw(world.editor_id, db.session.get(Experiment, arms["experiment"]), random.Random(seed))
        assert drawn in arms["arms"][arm_ids[2]]
    # The editor's own answers count too: after two of the third arm, the first two arms (1 review) come first.
    rate(world, arms, arms["arms"][arm_ids[2]][0])
    rate(world, arms, arms["arms"][arm_ids[2]][1])
    drawn = review.draw(world.editor_id, db.session.get(Experiment, arms["experiment"]), random.Random(3))
    assert drawn in arms["arms"][arm_ids[0]] + arms["arms"][arm_ids[1]]


def test_ties_are_broken_at_random(ctx, world, arms):
    experiment = db.session.get(Experiment, arms["experiment"])
    first_arms = set()
    for seed in range(30):
        drawn = review.draw(world.editor_id, experiment, random.Random(seed))
        first_arms.add(next(arm for arm, ids in arms["arms"].items() if drawn in ids))
    assert first_arms == set(arms["arms"])


def test_an_arm_without_anything_left_gives_way_to_the_next(ctx, world, arms):
    arm_ids = list(arms["arms"])
    for c in arms["arms"][arm_ids[0]]:  # the editor rated all of arm 0: it has the most reviews anyway
        rate(world, arms, c)
    for c in arms["arms"][arm_ids[1]] + arms["arms"][arm_ids[2]]:
        rate(world, arms, c, reviewer=world.owner_id)
        rate(world, arms, c, reviewer=world.admin_id)
    # Arm 0 has the fewest reviews (3 vs 6) but nothing left for the editor: the draw goes to another arm.
    drawn = review.draw(world.editor_id, db.session.get(Experiment, arms["experiment"]), random.Random(0))
    assert drawn in arms["arms"][arm_ids[1]] + arms["arms"][arm_ids[2]]


def test_answering_again_replaces_the_review(ctx, world, arms):
    conversation = next(iter(arms["arms"].values()))[0]
    rate(world, arms, conversation, rating="good", note="fine")
    page = rate(world, arms, conversation, rating="bad", note="rude")
    rows = db.session.scalars(sa.select(Review)).all()
    assert [(r.rating, r.note) for r in rows] == [("bad", "rude")] and page.rated == 1


@pytest.mark.parametrize("data, field", [
    ({"rating": "meh"}, "rating"), ({}, "rating"), ({"rating": "good", "note": "x" * 2001}, "note"),
    ({"rating": "good", "note": "a\x00b"}, "note"),
])
def test_bad_rating_or_note_shows_the_same_conversation_with_errors_and_writes_nothing(ctx, world, arms, data, field):
    conversation = next(iter(arms["arms"].values()))[0]
    with pytest.raises(review.ReviewRejected) as rejected:
        review.submit_review(world.editor_id, world.agent_id, arms["experiment"],
                             {"conversation_id": str(conversation), **data})
    assert field in rejected.value.fields and rejected.value.page.conversation_id == conversation
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Review)) == 0


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_conversation_id_is_a_422(ctx, world, arms, value):
    with pytest.raises(ValidationError) as error:
        review.submit_review(world.editor_id, world.agent_id, arms["experiment"],
                             {"conversation_id": value, "rating": "good"})
    assert "conversation_id" in error.value.fields


def test_a_conversation_not_reviewable_in_this_experiment_is_a_404(app, ctx, world, arms):
    other = factories.experiment(world.agent_id, status="running", name="Other")
    for conversation_id in (arms["outside"], arms["no_agent"][0], 999_999, "abc", "1e3", "-1", "9" * 30):
        with pytest.raises(NotFound):
            review.submit_review(world.editor_id, world.agent_id, arms["experiment"],
                                 {"conversation_id": str(conversation_id), "rating": "good"})
    with pytest.raises(NotFound):  # a real conversation, posted to another experiment's review
        review.submit_review(world.editor_id, world.agent_id, other,
                             {"conversation_id": str(next(iter(arms["arms"].values()))[0]), "rating": "good"})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Review)) == 0


def test_review_counts_per_arm(ctx, world, arms):
    arm_ids = list(arms["arms"])
    rate(world, arms, arms["arms"][arm_ids[0]][0], rating="good")
    rate(world, arms, arms["arms"][arm_ids[0]][0], reviewer=world.owner_id, rating="bad")
    rate(world, arms, arms["arms"][arm_ids[1]][0], reviewer=world.owner_id, rating="good")
    per_arm, reviewers = review.review_counts(arms["experiment"])
    assert per_arm == {arm_ids[0]: (2, 1, 2), arm_ids[1]: (1, 1, 1)} and reviewers == 2


def test_a_racing_second_answer_updates_the_first_instead_of_failing(ctx, world, arms, monkeypatch):
    """The reviewer's other tab wrote the row between this request's update (no row yet) and its insert: the
    insert hits the unique key inside its savepoint, and the review is updated instead."""
    conversation = next(iter(arms["arms"].values()))[0]
    rate(world, arms, conversation, rating="good", note="first tab")
    real_execute, calls = db.session.execute, []

    def execute(statement, *args, **kwargs):
        if not calls and isinstance(statement, sa.Update):  # the update runs before the other tab's row existed
            calls.append(statement)
            return type("Missed", (), {"rowcount": 0})()
        return real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(db.session, "execute", execute)
    review._save_review(conversation, world.editor_id, {
        "experiment_id": arms["experiment"], "variant_id": next(iter(arms["arms"])), "variant_key": "control",
        "rating": "bad", "note": "second tab", "reviewed_at": utcnow()})
    db.session.commit()
    monkeypatch.undo()
    rows = db.session.scalars(sa.select(Review)).all()
    assert calls and [(r.rating, r.note) for r in rows] == [("bad", "second tab")]
