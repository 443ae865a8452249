"""The visitor preview of an experiment (SPEC §8): which variant a visitor would get, as a dry run of SPEC §5
steps 3–4 on the same pure bucketing and persona functions as the runtime; it writes nothing."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Experiment, ExperimentAssignment, Variant
from webapp.services import validation
from webapp.services.errors import NotFound, ValidationError
from webapp.services.experiments.experiments import active_experiment_query
from webapp.services.runtime import bucketing
from webapp.services.runtime.persona import Persona, effective_persona, system_prompt
from webapp.services.workspace.agents import agent_for


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
