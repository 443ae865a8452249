"""The metrics an experiment measures (SPEC §7, §10.1): one list that the results, the exports and the analysis
settings all read, so that a new metric (feedback, blinded review, goals) is added in one place.

Each metric has a `label`, a `kind` ("proportion" or "ratio": how its sufficient statistics are built) and the
`unit` the page shows.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import GoalEvent

METRICS: dict[str, dict[str, Any]] = {
    "messages_per_conversation": {"label": "Visitor messages per conversation", "kind": "ratio", "unit": ""},
    "session_length": {"label": "Session length per conversation", "kind": "ratio", "unit": "s"},
    "lead_capture_rate": {"label": "Lead capture rate", "kind": "proportion", "unit": "%"},
}


GOAL_PREFIX = "goal:"  # a goal metric's key: "goal:<event name>" (SPEC §13)


def goal_metric(name: str) -> dict[str, Any]:
    """A goal's metric: the visitors with at least one event of that name, over the visitors (a proportion)."""
    return {"label": f"“{name}” goal rate", "kind": "proportion", "unit": "%", "goal": name}


def goal_name(metric: str) -> str | None:
    """The event name of a `goal:<name>` metric, else None."""
    return metric[len(GOAL_PREFIX):] if metric.startswith(GOAL_PREFIX) else None


def experiment_goals(experiment_id: int) -> list[str]:
    """The event names seen in the experiment's stamped conversations (index ix_goal_events_experiment_name)."""
    return list(db.session.scalars(
        sa.select(GoalEvent.name).where(GoalEvent.experiment_id == experiment_id, GoalEvent.variant_id.is_not(None))
        .distinct().order_by(GoalEvent.name)))


def agent_goals(agent_id: int) -> list[str]:
    """The event names the agent's runtime has reported, in any conversation."""
    return list(db.session.scalars(
        sa.select(GoalEvent.name).where(GoalEvent.agent_id == agent_id).distinct().order_by(GoalEvent.name)))


def experiment_metrics(experiment: Any | None = None) -> dict[str, dict[str, Any]]:
    """The metrics of `experiment` (None: a new one), in the order the results show them: the built-in ones, then a
    `goal:<name>` per event name seen in its stamped conversations (and its primary metric if that is a goal none
    has reached yet)."""
    metrics = dict(METRICS)
    if experiment is None or getattr(experiment, "id", None) is None:
        return metrics
    for name in experiment_goals(experiment.id):
        metrics[GOAL_PREFIX + name] = goal_metric(name)
    primary = goal_name(getattr(experiment, "primary_metric", None) or "")
    if primary:
        metrics.setdefault(GOAL_PREFIX + primary, goal_metric(primary))
    return metrics


def primary_metric_choices(experiment: Any | None = None) -> dict[str, str]:
    """The metrics `experiment` may take as its primary metric: key → label — its own, and every goal its agent's
    runtime has reported (so that a goal can be the primary metric before the experiment's first such event)."""
    metrics = experiment_metrics(experiment)
    if experiment is not None and getattr(experiment, "agent_id", None) is not None:
        for name in agent_goals(experiment.agent_id):
            metrics.setdefault(GOAL_PREFIX + name, goal_metric(name))
    return {key: meta["label"] for key, meta in metrics.items()}
