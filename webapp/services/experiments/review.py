"""Blinded review of an experiment's conversations (SPEC §12).

A member rates one conversation at a time as Good or Bad without knowing its arm: the draw takes the arm with the
fewest reviews so far (ties at random), then a random conversation of that arm with at least one agent message that
this reviewer has not rated; what the page shows is masked (`mask`) so that no persona name gives the arm away.
"""
from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import REVIEW_RATINGS, Agent, Conversation, Experiment, Message, Review, utcnow
from webapp.services import validation
from webapp.services.errors import NotFound, ValidationError
from webapp.services.experiments.experiments import experiment_for

MASK = "Assistant"
NOTE_MAX = 2000
MESSAGES_SHOWN = 500  # a review reads the start of a very long conversation, as the transcript's first page
NOT_IN_EXPERIMENT = "No such conversation in this experiment's review."


def persona_names(experiment: Experiment, agent: Agent) -> list[str]:
    """Every persona name of the experiment's variants and the agent's default persona name."""
    names = [agent.persona_name]
    for variant in experiment.variants:
        persona = variant.config.get("persona") if isinstance(variant.config, dict) else None
        if isinstance(persona, dict) and isinstance(persona.get("name"), str):
            names.append(persona["name"])
    return names


def masker(names: Iterable[str]) -> Callable[[str], str]:
    """A function replacing each of `names` with "Assistant": case-insensitive, whole words only ("Aria" and
    "ARIA" go, "Ariadne" stays), in any script.

    Names are matched literally (re.escape: "R2.D2" or "Dr. (Ann)" are no patterns), longest first (so "Aria
    Lee" goes whole, not as "Assistant Lee"), and in Unicode NFC on both sides (an "é" typed as e + ◌́ is the
    same letter). A word boundary is a neighbour that is not a letter, digit, underscore or combining mark, so that
    "Zoë" does not match inside "Zoëlla" nor "Ann" inside "Ann\u0301a"."""
    cleaned = sorted({unicodedata.normalize("NFC", n.strip()) for n in names if n and n.strip()},
                     key=lambda n: (-len(n), n))
    if not cleaned:
        return lambda text: text
    word = r"[\w\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
    pattern = re.compile(rf"(?<!{word})(?:{'|'.join(map(re.escape, cleaned))})(?!{word})", re.IGNORECASE)
    return lambda text: pattern.sub(MASK, unicodedata.normalize("NFC", text))


@dataclass(frozen=True)
class ShownMessage:
    role: str
    sent_at: datetime
    text: str


@dataclass
class ReviewPage:
    """What the review page shows: one masked conversation (or none left), and how many this reviewer has rated.

    Nothing here names the arm: no variant, key, weight, persona or system prompt, nor the experiment's name (which
    often names the personas it compares)."""

    experiment_id: int
    rated: int
    conversation_id: int | None = None
    messages: list[ShownMessage] | None = None
    total_messages: int = 0
    rating: str = ""  # the form's values when it comes back with errors
    note: str = ""
    errors: dict[str, str] | None = None


def _experiment(actor_id: int, agent_id: int, experiment_id: int) -> Experiment:
    return experiment_for(actor_id, agent_id, experiment_id, "review_conversations")


def _has_agent_message(conversation_id: Any) -> sa.ColumnElement[bool]:
    return sa.exists().where(Message.conversation_id == conversation_id, Message.role == "agent")


def _rated(reviewer_id: int, experiment_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Review).where(
        Review.reviewer_id == reviewer_id, Review.experiment_id == experiment_id))


def draw(reviewer_id: int, experiment: Experiment, rng: random.Random | None = None) -> int | None:
    """The next conversation for `reviewer_id`: from the arm with the fewest reviews (by anyone) so far, ties at
    random, a random stamped conversation of that arm with an agent message that this reviewer has not rated;
    the next arm when that one has none left; None when no arm has."""
    rng = rng or random.SystemRandom()
    reviews = dict(db.session.execute(
        sa.select(Review.variant_id, sa.func.count()).where(Review.experiment_id == experiment.id)
        .group_by(Review.variant_id)).all())
    arms = sorted((v.id for v in experiment.variants), key=lambda arm: (reviews.get(arm, 0), rng.random()))
    not_rated = ~sa.exists().where(Review.conversation_id == Conversation.id, Review.reviewer_id == reviewer_id)
    for arm in arms:
        found = db.session.scalar(
            sa.select(Conversation.id)
            .where(Conversation.experiment_id == experiment.id, Conversation.variant_id == arm,
                   _has_agent_message(Conversation.id), not_rated)
            .order_by(sa.func.random()).limit(1))
        if found is not None:
            return found
    return None


def _page(actor_id: int, experiment: Experiment, conversation_id: int | None, **form: Any) -> ReviewPage:
    mask = masker(persona_names(experiment, experiment.agent))
    page = ReviewPage(experiment.id, _rated(actor_id, experiment.id), **form)
    if conversation_id is not None:
        rows = db.session.execute(
            sa.select(Message.role, Message.sent_at, Message.text).where(Message.conversation_id == conversation_id)
            .order_by(Message.sent_at, Message.id).limit(MESSAGES_SHOWN)).all()
        page.conversation_id = conversation_id
        page.messages = [ShownMessage(r.role, r.sent_at, mask(r.text or "")) for r in rows]
        page.total_messages = db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
            Message.conversation_id == conversation_id))
    return page


def next_review(actor_id: int, agent_id: int, experiment_id: int, rng: random.Random | None = None) -> ReviewPage:
    """The review page for a member (editors too; non-members 404): the next drawn conversation, masked."""
    experiment = _experiment(actor_id, agent_id, experiment_id)
    return _page(actor_id, experiment, draw(actor_id, experiment, rng))


def _reviewable(experiment: Experiment, value: Any) -> Conversation:
    """The posted conversation_id as one the review could have drawn: stamped with this experiment and with an
    agent message. Anything else (another experiment's, agent's or workspace's id, or no such id) is a 404, the
    same for all: ids do not leak."""
    text = value.strip() if isinstance(value, str) else ""
    conversation = None
    if text.isascii() and text.isdigit() and len(text) <= 10 and 1 <= int(text) <= 2**31 - 1:
        conversation = db.session.get(Conversation, int(text))
    if (conversation is None or conversation.agent_id != experiment.agent_id
            or conversation.experiment_id != experiment.id or conversation.variant_id is None
            or not db.session.scalar(sa.select(_has_agent_message(conversation.id)))):
        raise NotFound(NOT_IN_EXPERIMENT)
    return conversation


def submit_review(actor_id: int, agent_id: int, experiment_id: int, data: dict[str, Any],
                  rng: random.Random | None = None) -> ReviewPage:
    """Record (or replace) the reviewer's rating of a conversation, then draw the next one.

    A missing or malformed conversation_id is a 422 naming it; one that is not this experiment's reviewable
    conversation a 404. A bad rating or note comes back as the same conversation with the field errors (raised as
    ReviewRejected), and nothing is written."""
    experiment = _experiment(actor_id, agent_id, experiment_id)
    raw_id = data.get("conversation_id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise ValidationError({"conversation_id": "conversation_id is required: the id of the conversation rated."})
    conversation = _reviewable(experiment, raw_id)
    errors: dict[str, str] = {}
    rating = data.get("rating")
    if rating not in REVIEW_RATINGS:
        errors["rating"] = "Choose Good or Bad."
    note = validation.text(data.get("note") or "", "note", errors, max_len=NOTE_MAX, label="Note", multiline=True)
    if errors:
        raise ReviewRejected(_page(actor_id, experiment, conversation.id, rating=rating if isinstance(rating, str)
                                   else "", note=data.get("note") if isinstance(data.get("note"), str) else "",
                                   errors=errors))
    values = {"experiment_id": experiment.id, "variant_id": conversation.variant_id,
              "variant_key": conversation.variant_key, "rating": rating, "note": note, "reviewed_at": utcnow()}
    _save_review(conversation.id, actor_id, values)
    db.session.commit()
    return _page(actor_id, experiment, draw(actor_id, experiment, rng))


def _save_review(conversation_id: int, reviewer_id: int, values: dict[str, Any]) -> None:
    """Insert the reviewer's review of the conversation, or replace it. The unique (conversation, reviewer) key
    settles a race with the reviewer's own second tab: the loser's insert fails inside its savepoint and it
    updates the winner's row instead."""
    mine = (Review.conversation_id == conversation_id, Review.reviewer_id == reviewer_id)
    if db.session.execute(sa.update(Review).where(*mine).values(**values)).rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(Review(conversation_id=conversation_id, reviewer_id=reviewer_id, **values))
    except sa.exc.IntegrityError:
        db.session.execute(sa.update(Review).where(*mine).values(**values))


class ReviewRejected(ValidationError):
    """Bad rating or note: the page to show again (the same conversation, the values and the field errors)."""

    def __init__(self, page: ReviewPage):
        super().__init__(page.errors or {})
        self.page = page


def review_counts(experiment_id: int) -> tuple[dict[int, tuple[int, int, int]], int]:
    """Per variant id: (reviews, rated good, reviewers); and the experiment's distinct reviewers. For the results'
    "Blinded review" section (review_good_rate: good / reviews, the unit is the review)."""
    per_arm = {variant_id: (int(n), int(good or 0), int(reviewers)) for variant_id, n, good, reviewers in
               db.session.execute(
                   sa.select(Review.variant_id, sa.func.count(),
                             sa.func.sum(sa.case((Review.rating == "good", 1), else_=0)),
                             sa.func.count(sa.distinct(Review.reviewer_id)))
                   .where(Review.experiment_id == experiment_id).group_by(Review.variant_id))}
    reviewers = db.session.scalar(sa.select(sa.func.count(sa.distinct(Review.reviewer_id)))
                                  .where(Review.experiment_id == experiment_id))
    return per_arm, int(reviewers or 0)
