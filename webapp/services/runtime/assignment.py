"""Assignment (SPEC §5): the conversation's stamp, then the active experiment, the durable row, then bucketing."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from webapp.extensions import db
from webapp.models import Experiment, ExperimentAssignment, Variant
from webapp.services.runtime import bucketing
from webapp.services import validation
from webapp.services.workspace.agents import agent_for
from webapp.services.errors import NotFound, ValidationError
from webapp.services.experiments.experiments import active_experiment_query
from webapp.services.runtime.persona import Persona, effective_persona, system_prompt


@dataclass(frozen=True)
class Arm:
    """The variant a conversation runs on: its stamp, and the live fields while the experiment exists."""

    experiment_id: int
    variant_id: int
    variant_key: str
    experiment_name: str | None = None
    kind: str | None = None
    variant_name: str | None = None
    config: dict[str, Any] | None = None


E, V, A = Experiment.__table__.c, Variant.__table__.c, ExperimentAssignment.__table__.c
ARM_COLUMNS = (E.name.label("experiment_name"), E.kind, V.id, V.key, V.name.label("variant_name"), V.config)

# Built once: the hot path pays neither statement construction nor cache-key generation per request.
ACTIVE_ARMS = (
    sa.select(E.id.label("experiment_id"), *ARM_COLUMNS, V.weight, V.position)
    .join_from(Experiment.__table__, Variant.__table__, V.experiment_id == E.id)
    .where(E.id == active_experiment_query(sa.bindparam("agent_id")).with_only_columns(Experiment.id)
           .scalar_subquery())
    .order_by(V.position)
)
STAMPED_ARM = (
    sa.select(*ARM_COLUMNS).join_from(Variant.__table__, Experiment.__table__, E.id == V.experiment_id)
    .where(V.id == sa.bindparam("variant_id"), V.experiment_id == sa.bindparam("experiment_id"),
           V.key == sa.bindparam("variant_key"))
)
ASSIGNED = sa.select(A.variant_id, A.variant_key, A.assigned_at).where(
    A.experiment_id == sa.bindparam("experiment_id"), A.visitor_id == sa.bindparam("visitor_id"))
_INSERTS: dict[tuple[str, str], sa.Insert] = {}


def execute(statement: sa.Executable, params: dict[str, Any] | None = None) -> sa.CursorResult:
    """Run a Core statement on the session's connection (its transaction), skipping the ORM layer."""
    return db.session.connection().execute(statement, params or {})


def insert_ignoring_conflict(model: type, values: dict[str, Any], conflict_columns: list[str]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new id, or None when a unique key already exists."""
    dialect = db.session.get_bind().dialect.name
    statement = _INSERTS.get((model.__tablename__, dialect))
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (insert(model.__table__).on_conflict_do_nothing(index_elements=conflict_columns)
                     .returning(model.__table__.c.id))
        _INSERTS[(model.__tablename__, dialect)] = statement
    return execute(statement, values).scalar()


def _arm(experiment_id: int, row: Any) -> Arm:
    return Arm(experiment_id, row.id, row.key, row.experiment_name, row.kind, row.variant_name, row.config)


def arm_of(row: Any) -> Arm:
    """The arm of an active-arms row (which carries its experiment_id)."""
    return _arm(row.experiment_id, row)


def active_arms(agent_id: int) -> list[Any]:
    """The agent's active experiment's variants in position order (with the experiment's fields), in one query."""
    return execute(ACTIVE_ARMS, {"agent_id": agent_id}).all()


def bucket(rows: list[Any], visitor_id: str) -> Any:
    """Step 4's choice among the active experiment's arms (rows in position order), without writing."""
    h = bucketing.bucket_value(rows[0].experiment_id, visitor_id)
    return rows[bucketing.choose_position(h, [r.weight for r in rows])]


def assigned_arm(rows: list[Any], variant_id: int, variant_key: str) -> Arm:
    """The arm of an existing assignment row (step 3), with live fields while its variant is active."""
    live = next((r for r in rows if r.id == variant_id), None)
    return _arm(rows[0].experiment_id, live) if live else Arm(rows[0].experiment_id, variant_id, variant_key)


def assignment_values(agent_id: int, visitor_id: str, chosen: Any, assigned_at: Any) -> dict[str, Any]:
    """An assignment row. `assigned_at` is the `sent_at` of the message that assigned the visitor (now, unless
    the runtime sent history): the cumulative-visitors chart then shares the runtime's timeline with the
    per-day metrics, which go by the conversations' message times."""
    return {"agent_id": agent_id, "experiment_id": chosen.experiment_id, "variant_id": chosen.id,
            "variant_key": chosen.key, "visitor_id": visitor_id, "assigned_at": assigned_at}


def record_assignment(agent_id: int, visitor_id: str, rows: list[Any], chosen: Any, assigned_at: Any) -> Arm:
    """Step 4's insert, race-safe: the unique (experiment, visitor) keeps the first row; a loser reads it."""
    inserted = insert_ignoring_conflict(ExperimentAssignment,
                                        assignment_values(agent_id, visitor_id, chosen, assigned_at),
                                        ["experiment_id", "visitor_id"])
    if inserted is None:
        return existing_assignment(rows, visitor_id)
    return _arm(chosen.experiment_id, chosen)


def existing_assignment(rows: list[Any], visitor_id: str) -> Arm:
    """The arm of the row a concurrent request inserted first for (active experiment, visitor)."""
    existing = execute(ASSIGNED, {"experiment_id": rows[0].experiment_id, "visitor_id": visitor_id}).one()
    return assigned_arm(rows, existing.variant_id, existing.variant_key)


def stamped_arm(experiment_id: int | None, variant_id: int | None, variant_key: str | None) -> Arm | None:
    """Step 1: the arm of a stamp, with its live fields unless the experiment has been deleted."""
    if experiment_id is None or variant_id is None:
        return None
    row = execute(STAMPED_ARM, {"variant_id": variant_id, "experiment_id": experiment_id,
                                "variant_key": variant_key}).first()
    return _arm(experiment_id, row) if row else Arm(experiment_id, variant_id, variant_key or "")


def current_assignment(agent_id: int, visitor_id: str, rows: list[Any] | None = None) -> tuple[Arm, Any] | None:
    """The visitor's row in the active experiment with its assigned_at, or None; never assigns."""
    rows = active_arms(agent_id) if rows is None else rows
    if not rows:
        return None
    row = execute(ASSIGNED, {"experiment_id": rows[0].experiment_id, "visitor_id": visitor_id}).first()
    if row is None:
        return None
    return assigned_arm(rows, row.variant_id, row.variant_key), row.assigned_at


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
    active_name: str | None = None  # the agent's active experiment (this one or another), None when none runs
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
    active = db.session.execute(
        active_experiment_query(agent_id).with_only_columns(Experiment.id, Experiment.name)).first()
    shell = Preview(experiment, ranges, active is not None and active.id == experiment.id,
                    active.name if active is not None else None)
    if visitor_id is None:
        return shell  # nobody asked about yet: the empty form
    errors: dict[str, str] = {}
    if visitor_id == "":
        errors["visitor_id"] = "Enter a visitor id."
    else:
        visitor_id = validation.opaque_id(visitor_id, "visitor_id", errors)
    if not variants:
        errors["visitor_id"] = "This experiment has no variants to preview."
    if errors:
        raise ValidationError(errors)
    h = bucketing.bucket_value(experiment.id, visitor_id)
    chosen = variants[bucketing.choose_position(h, weights)]
    existing_id = db.session.scalar(
        sa.select(ExperimentAssignment.variant_id)
        .where(ExperimentAssignment.experiment_id == experiment.id, ExperimentAssignment.visitor_id == visitor_id))
    existing = next((v for v in variants if v.id == existing_id), None)
    variant = existing or chosen
    persona = effective_persona(agent.persona_name, agent.persona_tone, experiment.kind, variant.config)
    return replace(shell, visitor_id=visitor_id, variant=variant, from_existing_assignment=existing is not None,
                   bucket_value=h, persona=persona,
                   system_prompt=system_prompt(persona, agent.workspace.name, agent.instructions))
