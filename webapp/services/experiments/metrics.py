"""The metrics an experiment measures (SPEC §7, §10.1): one list that the results, the exports and the analysis
settings all read, so that a new metric (feedback, blinded review, goals) is added in one place.

Each metric has a `label`, a `kind` ("proportion" or "ratio": how its sufficient statistics are built) and the
`unit` the page shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Feedback, GoalEvent
from webapp.services.experiments import stats

METRICS: dict[str, dict[str, Any]] = {
    "messages_per_conversation": {"label": "Visitor messages per conversation", "kind": "ratio", "unit": ""},
    "session_length": {"label": "Session length per conversation", "kind": "ratio", "unit": "s"},
    "lead_capture_rate": {"label": "Lead capture rate", "kind": "proportion", "unit": "%"},
}
# SPEC §12. Per visitor: conversations rated up / conversations rated (a ratio metric, as gbstats' RatioStatistic).
# An experiment shows it once any of its conversations has feedback, or when it is the primary metric; it can be
# chosen as the primary metric at any time (the runtime API always takes feedback, whereas a goal's name is known
# only once reported).
FEEDBACK_METRIC = "positive_feedback_rate"
FEEDBACK_METRICS: dict[str, dict[str, Any]] = {
    FEEDBACK_METRIC: {"label": "Positive feedback rate", "kind": "ratio", "unit": "%",
                      "counts": "conversations rated up / conversations rated"},
}
# SPEC §12. Per arm: reviews rated good / reviews; the unit is the review, so it is never a primary metric (the
# plan and the decision are per visitor). Its own section of the page (`section`); every experiment has it.
REVIEW_METRICS: dict[str, dict[str, Any]] = {
    "review_good_rate": {"label": "Rated good in blinded review", "kind": "proportion", "unit": "%",
                         "unit_name": "review", "section": "review", "counts": "reviews rated good / reviews"},
}


GOAL_PREFIX = "goal:"  # a goal metric's key: "goal:<event name>" (SPEC §13)


def goal_metric(name: str) -> dict[str, Any]:
    """A goal's metric: the visitors with at least one event of that name, over the visitors (a proportion)."""
    return {"label": f"“{name}” goal rate", "kind": "proportion", "unit": "%", "goal": name}


def goal_name(metric: str) -> str | None:
    """The event name of a `goal:<name>` metric, else None."""
    return metric[len(GOAL_PREFIX):] if metric.startswith(GOAL_PREFIX) else None


def metric_meta(metric: str) -> dict[str, Any]:
    """Any metric's entry (label, kind, unit) by its key, a goal's included; KeyError for an unknown key."""
    goal = goal_name(metric)
    return goal_metric(goal) if goal else {**METRICS, **FEEDBACK_METRICS, **REVIEW_METRICS}[metric]


def experiment_goals(experiment_id: int) -> list[str]:
    """The event names seen in the experiment's stamped conversations (index ix_goal_events_experiment_name)."""
    return list(db.session.scalars(
        sa.select(GoalEvent.name).where(GoalEvent.experiment_id == experiment_id, GoalEvent.variant_id.is_not(None))
        .distinct().order_by(GoalEvent.name)))


def agent_goals(agent_id: int) -> list[str]:
    """The event names the agent's runtime has reported, in any conversation."""
    return list(db.session.scalars(
        sa.select(GoalEvent.name).where(GoalEvent.agent_id == agent_id).distinct().order_by(GoalEvent.name)))


def experiment_has_feedback(experiment_id: int) -> bool:
    """Whether any stamped conversation of the experiment has feedback (index ix_feedback_experiment_variant_visitor)."""
    return db.session.scalar(sa.select(sa.exists().where(Feedback.experiment_id == experiment_id,
                                                         Feedback.variant_id.is_not(None)))) or False


def experiment_metrics(experiment: Any | None = None) -> dict[str, dict[str, Any]]:
    """The metrics of `experiment` (None: a new one), in the order the results show them: the built-in ones, the
    positive feedback rate once the experiment has feedback (or is read on it), a `goal:<name>` per event name seen
    in its stamped conversations (and its primary metric if that is a goal none has reached yet), then the blinded
    review's rate."""
    metrics = dict(METRICS)
    if experiment is None or getattr(experiment, "id", None) is None:
        return metrics
    if getattr(experiment, "primary_metric", None) == FEEDBACK_METRIC or experiment_has_feedback(experiment.id):
        metrics.update(FEEDBACK_METRICS)
    for name in experiment_goals(experiment.id):
        metrics[GOAL_PREFIX + name] = goal_metric(name)
    primary = goal_name(getattr(experiment, "primary_metric", None) or "")
    if primary:
        metrics.setdefault(GOAL_PREFIX + primary, goal_metric(primary))
    metrics.update(REVIEW_METRICS)
    return metrics


def primary_metric_choices(experiment: Any | None = None, agent_id: int | None = None) -> dict[str, str]:
    """The metrics `experiment` (None: a new one of `agent_id`) may take as its primary metric: key → label — its
    own, and every goal its agent's runtime has reported (so that a goal can be the primary metric before the
    experiment's first such event, or of an experiment not created yet)."""
    metrics = {**experiment_metrics(experiment), **FEEDBACK_METRICS}
    agent_id = getattr(experiment, "agent_id", None) if experiment is not None else agent_id
    if agent_id is not None:
        for name in agent_goals(agent_id):
            metrics.setdefault(GOAL_PREFIX + name, goal_metric(name))
    return {key: meta["label"] for key, meta in metrics.items() if meta.get("section") is None}


def metrics_with(experiment: Any | None, metric: str | None) -> dict[str, dict[str, Any]]:
    """The metrics of `experiment` with `metric` among them: a primary metric being chosen (a goal only the agent
    has seen yet, on a new or edited experiment) has its label and kind in the plan's reasons too."""
    found = experiment_metrics(experiment)
    return found if not metric or metric in found else {**found, metric: metric_meta(metric)}


@dataclass
class VariantTotals:
    """Sufficient statistics of one variant, straight from SQL."""

    n: int = 0
    conversations: float = 0
    conversations_sq: float = 0
    messages: float = 0
    messages_sq: float = 0
    messages_x_conversations: float = 0
    seconds: float = 0
    seconds_sq: float = 0
    seconds_x_conversations: float = 0
    converted: float = 0
    leads: int = 0
    goals: dict[str, int] = field(default_factory=dict)  # event name → visitors with ≥ 1 such event (SPEC §13)
    # positive_feedback_rate, per visitor: m = conversations rated up, d = conversations rated (SPEC §12)
    feedback_up: float = 0
    feedback_up_sq: float = 0
    feedback_rated: float = 0
    feedback_rated_sq: float = 0
    feedback_up_x_rated: float = 0
    # review_good_rate, per review (SPEC §12)
    reviews: int = 0
    reviews_good: int = 0
    reviewers: int = 0

    def reached(self, metric: str) -> int:
        """A proportion metric's numerator: visitors with a lead, or with the goal's event."""
        goal = goal_name(metric)
        return self.goals.get(goal, 0) if goal else int(self.converted)

    def stat(self, metric: str) -> stats.Stat:
        if goal_name(metric):
            return stats.ProportionStat(self.n, self.reached(metric))
        if metric == "messages_per_conversation":
            return stats.RatioStat(self.n, self.messages, self.messages_sq, self.conversations,
                                   self.conversations_sq, self.messages_x_conversations)
        if metric == "session_length":
            return stats.RatioStat(self.n, self.seconds, self.seconds_sq, self.conversations,
                                   self.conversations_sq, self.seconds_x_conversations)
        if metric == "positive_feedback_rate":
            return stats.RatioStat(self.n, self.feedback_up, self.feedback_up_sq, self.feedback_rated,
                                   self.feedback_rated_sq, self.feedback_up_x_rated)
        if metric == "review_good_rate":
            return stats.ProportionStat(self.reviews, self.reviews_good)
        return stats.ProportionStat(self.n, self.converted)

    def counts(self, metric: str) -> tuple[float, int]:
        """The metric's value as two counts, (numerator, denominator): visitors with a lead (or the goal's event) /
        visitors, conversations rated up / conversations rated, reviews rated good / reviews, visitor messages (or
        session seconds) / conversations."""
        if metric == "lead_capture_rate" or goal_name(metric):
            return self.reached(metric), self.n
        if metric == "positive_feedback_rate":
            return int(self.feedback_up), int(self.feedback_rated)
        if metric == "review_good_rate":
            return self.reviews_good, self.reviews
        if metric == "messages_per_conversation":
            return int(self.messages), int(self.conversations)
        return self.seconds, int(self.conversations)

    def value(self, metric: str) -> float | None:
        numerator, denominator = self.counts(metric)
        return numerator / denominator if denominator else None


def feedback_per_visitor(experiment_id: int) -> sa.Subquery:
    """positive_feedback_rate per stamped visitor: m = their conversations rated up, d = their conversations rated
    (index ix_feedback_experiment_variant_visitor). The results sum it per variant, the daily series per day."""
    up = sa.func.sum(sa.case((Feedback.rating == "up", 1), else_=0))
    return (sa.select(Feedback.variant_id.label("variant_id"), Feedback.visitor_id.label("visitor_id"),
                      up.label("m"), sa.func.count().label("d"))
            .where(Feedback.experiment_id == experiment_id, Feedback.variant_id.is_not(None))
            .group_by(Feedback.variant_id, Feedback.visitor_id).subquery("feedback_per_visitor"))


def feedback_sums(per_visitor: sa.Subquery) -> list[Any]:
    """The sums of feedback_per_visitor that VariantTotals' feedback fields take, in their order."""
    m, d = per_visitor.c.m, per_visitor.c.d
    return [sa.func.sum(m), sa.func.sum(m * m), sa.func.sum(d), sa.func.sum(d * d), sa.func.sum(m * d)]


def set_feedback(totals: VariantTotals, sums: Any) -> None:
    (totals.feedback_up, totals.feedback_up_sq, totals.feedback_rated, totals.feedback_rated_sq,
     totals.feedback_up_x_rated) = (float(x or 0) for x in sums)


def goal_reachers(experiment_id: int) -> sa.Subquery:
    """Each (variant, visitor, event name) with at least one such event in a stamped conversation: the rows the
    daily cohorts join. The totals (results.goal_visitors) count the same set as COUNT(DISTINCT visitor_id) per
    name and variant instead of counting this subquery's rows: one pass over the covering index, where the
    subquery adds a temporary B-tree (measured on SQLite, 300,000 events: 44–76 ms against 143–203 ms)."""
    return (sa.select(GoalEvent.variant_id.label("variant_id"), GoalEvent.visitor_id.label("visitor_id"),
                      GoalEvent.name.label("name"))
            .where(GoalEvent.experiment_id == experiment_id, GoalEvent.variant_id.is_not(None))
            .distinct().subquery("goal_reachers"))
