"""Visitor feedback on a conversation (SPEC §12): `POST …/conversations/{conversation_id}/feedback`.

Recorded as leads are (`service.record_lead`): the key's agent, an existing conversation of the visitor, and the
conversation's stamp copied onto the row. One feedback per conversation: a later one replaces the earlier (its
rating, comment, time and the stamp as it is now).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import FEEDBACK_RATINGS, Feedback, utcnow
from webapp.services import validation
from webapp.services.errors import ValidationError
from webapp.services.runtime import assignment, service

COMMENT_MAX = 2000


@dataclass(frozen=True)
class FeedbackReport:
    """A validated feedback body."""

    visitor_id: str
    rating: str
    comment: str
    given_at: datetime


@dataclass(frozen=True)
class FeedbackResult:
    body: dict[str, Any]
    created: bool  # 201 when new, 200 when it replaced the conversation's earlier feedback


def parse_feedback(data: dict[str, Any]) -> FeedbackReport:
    """Validate a feedback body; ValidationError names every bad field."""
    errors: dict[str, str] = {}
    visitor_id = validation.opaque_id(data.get("visitor_id"), "visitor_id", errors)
    rating = data.get("rating")
    if rating not in FEEDBACK_RATINGS:
        errors["rating"] = "rating is required and must be 'up' or 'down'."
    comment = validation.runtime_text(data.get("comment"), "comment", errors, max_len=COMMENT_MAX)
    given_at = validation.timestamp(data.get("given_at"), "given_at", errors) or utcnow()
    if errors:
        raise ValidationError(errors)
    return FeedbackReport(visitor_id, rating, comment, given_at)


def record_feedback(workspace_id: int, agent_id: int, conversation_id: str, data: dict[str, Any],
                    auth: service.RuntimeAuth | None = None) -> FeedbackResult:
    """Record (or replace) the visitor's feedback on their conversation; it carries the conversation's stamp."""
    external_id = service.path_id(conversation_id, "conversation_id")
    report = parse_feedback(data)
    conversation = service.visitor_conversation(workspace_id, agent_id, external_id, report.visitor_id, auth)
    arm = assignment.stamped_arm(conversation.experiment_id, conversation.variant_id, conversation.variant_key)
    values = {"agent_id": agent_id, "conversation_id": conversation.id, "visitor_id": report.visitor_id,
              "rating": report.rating, "comment": report.comment, "given_at": report.given_at,
              **service.stamp_values(arm)}
    feedback_id = assignment.insert_ignoring_conflict(Feedback, values, ["conversation_id"])
    created = feedback_id is not None
    if not created:  # the conversation has feedback (maybe a concurrent one's, just written): this one replaces it
        feedback_id = db.session.execute(
            sa.update(Feedback).where(Feedback.conversation_id == conversation.id).values(**values)
            .returning(Feedback.id)).scalar_one()
    db.session.commit()
    return FeedbackResult({"feedback_id": feedback_id, "conversation_id": external_id, "rating": report.rating,
                           "comment": report.comment, "given_at": report.given_at.isoformat(),
                           "variant": service.variant_json(arm)}, created)
