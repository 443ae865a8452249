"""Experiments (SPEC §3): listing, the active-experiment rule."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..extensions import db
from ..models import Experiment, ExperimentAssignment
from .agents import agent_for


@dataclass
class ExperimentRow:
    experiment: Experiment
    visitors: int
    is_active: bool


def active_experiment_query(agent_id: int) -> sa.Select:
    """The agent's active experiment: running, latest started_at, ties to the higher id (SPEC §3)."""
    return (sa.select(Experiment)
            .where(Experiment.agent_id == agent_id, Experiment.status == "running")
            .order_by(Experiment.started_at.desc(), Experiment.id.desc())
            .limit(1))


def active_experiment(agent_id: int) -> Experiment | None:
    return db.session.scalar(active_experiment_query(agent_id))


def list_for_agent(actor_id: int, agent_id: int) -> list[ExperimentRow]:
    """The agent's experiments, newest first, with visitors so far and the active flag."""
    agent_for(actor_id, agent_id)
    visitors = (sa.select(ExperimentAssignment.experiment_id, sa.func.count().label("n"))
                .where(ExperimentAssignment.agent_id == agent_id)
                .group_by(ExperimentAssignment.experiment_id).subquery())
    rows = db.session.execute(
        sa.select(Experiment, sa.func.coalesce(visitors.c.n, 0))
        .outerjoin(visitors, visitors.c.experiment_id == Experiment.id)
        .where(Experiment.agent_id == agent_id)
        .order_by(Experiment.created_at.desc(), Experiment.id.desc())
    ).all()
    active = active_experiment(agent_id)
    return [ExperimentRow(e, n, active is not None and e.id == active.id) for e, n in rows]
