"""Assignment (SPEC §5): the conversation's stamp, then the active experiment, the durable row, then bucketing."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..models import Experiment, ExperimentAssignment, Variant, utcnow
from . import bucketing, validation
from .agents import agent_for
from .errors import NotFound, ValidationError
from .experiments import active_experiment_query
from .persona import Persona, effective_persona, system_prompt


@dataclass(frozen=True)
class Arm:
    """The variant a conversation runs on: its stamp, and the live rows while they still exist."""

    experiment_id: int
    variant_id: int
    variant_key: str
    experiment: Experiment | None
    variant: Variant | None

    @property
    def kind(self) -> str | None:
        return self.experiment.kind if self.experiment else None

    @property
    def config(self) -> dict[str, Any] | None:
        return self.variant.config if self.variant else None


def insert_ignoring_conflict(model: type, values: dict[str, Any], conflict_columns: list[str]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when a unique key already exists."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (insert(model.__table__).values(**values)
            .on_conflict_do_nothing(index_elements=conflict_columns)
            .returning(model.__table__.c.id))
    return db.session.execute(stmt).scalar()


def active_arms(agent_id: int) -> tuple[Experiment, list[Variant]] | None:
    """The agent's active experiment and its variants in position order, in one query; None if none runs."""
    active_id = active_experiment_query(agent_id).with_only_columns(Experiment.id).scalar_subquery()
    rows = db.session.execute(
        sa.select(Experiment, Variant).join(Variant, Variant.experiment_id == Experiment.id)
        .where(Experiment.id == active_id).order_by(Variant.position)
    ).all()
    if not rows:
        return None
    return rows[0][0], [variant for _, variant in rows]


def bucket(experiment_id: int, variants: list[Variant], visitor_id: str) -> tuple[Variant, int]:
    """Step 4: the variant the hash chooses, and the hash value."""
    h = bucketing.bucket_value(experiment_id, visitor_id)
    return variants[bucketing.choose_position(h, [v.weight for v in variants])], h


def assign(agent_id: int, visitor_id: str) -> Arm | None:
    """Steps 2–4 for a visitor message of an unstamped conversation; inserts the durable row (race-safe)."""
    active = active_arms(agent_id)
    if active is None:
        return None
    experiment, variants = active
    chosen, _ = bucket(experiment.id, variants, visitor_id)
    # Step 3 and 4 in one race-safe move: the unique (experiment, visitor) keeps the first row.
    inserted = insert_ignoring_conflict(
        ExperimentAssignment,
        {"agent_id": agent_id, "experiment_id": experiment.id, "variant_id": chosen.id,
         "variant_key": chosen.key, "visitor_id": visitor_id, "assigned_at": utcnow()},
        ["experiment_id", "visitor_id"])
    if inserted is None:
        existing = db.session.execute(
            sa.select(ExperimentAssignment.variant_id, ExperimentAssignment.variant_key)
            .where(ExperimentAssignment.experiment_id == experiment.id,
                   ExperimentAssignment.visitor_id == visitor_id)
        ).one()
        live = next((v for v in variants if v.id == existing.variant_id), None)
        return Arm(experiment.id, existing.variant_id, existing.variant_key, experiment, live)
    return Arm(experiment.id, chosen.id, chosen.key, experiment, chosen)


def stamped_arm(experiment_id: int | None, variant_id: int | None, variant_key: str | None) -> Arm | None:
    """Step 1: the arm of a stamp, with its live rows unless the experiment has been deleted."""
    if experiment_id is None or variant_id is None:
        return None
    row = db.session.execute(
        sa.select(Variant, Experiment).join(Experiment, Experiment.id == Variant.experiment_id)
        .where(Variant.id == variant_id, Variant.experiment_id == experiment_id, Variant.key == variant_key)
    ).first()
    if row is None:
        return Arm(experiment_id, variant_id, variant_key or "", None, None)
    return Arm(experiment_id, variant_id, variant_key or "", row.Experiment, row.Variant)


def current_assignment(agent_id: int, visitor_id: str) -> tuple[Arm, Any] | None:
    """The visitor's row in the active experiment with its assigned_at, or None; never assigns."""
    active = active_arms(agent_id)
    if active is None:
        return None
    experiment, variants = active
    row = db.session.execute(
        sa.select(ExperimentAssignment.variant_id, ExperimentAssignment.variant_key, ExperimentAssignment.assigned_at)
        .where(ExperimentAssignment.experiment_id == experiment.id, ExperimentAssignment.visitor_id == visitor_id)
    ).first()
    if row is None:
        return None
    live = next((v for v in variants if v.id == row.variant_id), None)
    return Arm(experiment.id, row.variant_id, row.variant_key, experiment, live), row.assigned_at


@dataclass(frozen=True)
class VariantRange:
    variant: Variant
    low: int
    high: int
    share: float


@dataclass(frozen=True)
class Preview:
    """What a visitor would get in an experiment: a dry run of steps 3–4 that writes nothing.

    Without a visitor id only the experiment and its split are filled in (the empty form).
    """

    experiment: Experiment
    ranges: list[VariantRange]
    is_active: bool
    visitor_id: str | None = None
    variant: Variant | None = None
    from_existing_assignment: bool = False
    bucket_value: int | None = None
    persona: Persona | None = None
    system_prompt: str | None = None


def preview(actor_id: int, agent_id: int, experiment_id: int, visitor_id: Any) -> Preview:
    """The variant `visitor_id` would get in this experiment (its row, else bucketing); reads only."""
    agent, _ = agent_for(actor_id, agent_id)
    experiment = db.session.get(Experiment, experiment_id)
    if experiment is None or experiment.agent_id != agent_id:
        raise NotFound("No such experiment.")
    variants = list(experiment.variants)
    weights = [v.weight for v in variants]
    ranges = [VariantRange(v, low, high, 100 * v.weight / sum(weights))
              for v, (low, high) in zip(variants, bucketing.weight_ranges(weights))]
    active_id = db.session.scalar(active_experiment_query(agent_id).with_only_columns(Experiment.id))
    shell = Preview(experiment, ranges, active_id == experiment.id)
    if visitor_id is None or visitor_id == "":
        return shell
    errors: dict[str, str] = {}
    visitor_id = validation.opaque_id(visitor_id, "visitor_id", errors)
    if not variants:
        errors["visitor_id"] = "This experiment has no variants to preview."
    if errors:
        raise ValidationError(errors)
    chosen, h = bucket(experiment.id, variants, visitor_id)
    existing_id = db.session.scalar(
        sa.select(ExperimentAssignment.variant_id)
        .where(ExperimentAssignment.experiment_id == experiment.id, ExperimentAssignment.visitor_id == visitor_id))
    existing = next((v for v in variants if v.id == existing_id), None)
    variant = existing or chosen
    persona = effective_persona(agent.persona_name, agent.persona_tone, experiment.kind, variant.config)
    return replace(shell, visitor_id=visitor_id, variant=variant, from_existing_assignment=existing is not None,
                   bucket_value=h, persona=persona,
                   system_prompt=system_prompt(persona, agent.workspace.name, agent.instructions))
