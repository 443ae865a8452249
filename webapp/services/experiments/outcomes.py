"""The outcome of an ended experiment (SPEC §10.6): what was decided, stored on the experiment.

An outcome is `shipped:<key>` (a treatment arm was shipped), `kept_control` or `inconclusive`, with an optional
note of at most 2,000 characters. Stop and "Record outcome" take it from the form fields `outcome` and `note`;
Promote records it itself (shipping the promoted arm, or keeping the control when the control is promoted); a
resume clears it. Rules in docs/results-page.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webapp.models import Agent, Experiment, Variant
from webapp.services import validation
from webapp.services.errors import ValidationError

RESULTS = ("shipped", "kept_control", "inconclusive")
NOTE_MAX = 2_000
SHIPPED_PREFIX = "shipped:"


@dataclass(frozen=True)
class Outcome:
    result: str
    variant_key: str | None = None
    note: str = ""
    recorded_at: datetime | None = None


def primary_metric(experiment: Experiment) -> str:
    """The metric an outcome's lift is read on: the experiment's primary metric (SPEC §10.1)."""
    return experiment.primary_metric or "lead_capture_rate"


def parse(experiment: Experiment, outcome: Any, note: Any) -> Outcome | None:
    """The outcome posted with Stop or Record outcome; None when `outcome` is absent or blank (no outcome).

    ValidationError on `outcome` (not one of the choices, a key that is not a treatment arm of this experiment, a
    note without an outcome) or `note` (over 2,000 characters, control characters)."""
    errors: dict[str, str] = {}
    clean_note = validation.text(note, "note", errors, max_len=NOTE_MAX, label="Note", multiline=True)
    value = outcome.strip() if isinstance(outcome, str) else outcome
    parsed = None
    if value is None or value == "":
        if clean_note and "note" not in errors:
            errors["outcome"] = "Choose an outcome for the note, or clear the note."
    elif not isinstance(value, str):
        errors["outcome"] = "Outcome must be text."
    elif value.startswith(SHIPPED_PREFIX):
        key = value[len(SHIPPED_PREFIX):]
        variant = next((v for v in experiment.variants if v.key == key), None)
        if variant is None:
            errors["outcome"] = (f"“{key[:64]}” is not a variant of this experiment; ship one of: "
                                 f"{', '.join(v.key for v in experiment.variants[1:])}.")
        elif variant.position == 0:
            errors["outcome"] = f"{variant.name} is the control: record “kept_control” to keep it."
        else:
            parsed = Outcome("shipped", key, clean_note)
    elif value in RESULTS and value != "shipped":
        parsed = Outcome(value, None, clean_note)
    else:
        errors["outcome"] = "Outcome must be shipped:<variant key>, kept_control or inconclusive."
    if errors:
        raise ValidationError(errors)
    return parsed


def promoted(variant: Variant, note: Any) -> Outcome:
    """The outcome Promote records: the promoted arm shipped, or the control kept. ValidationError on `note`."""
    errors: dict[str, str] = {}
    clean_note = validation.text(note, "note", errors, max_len=NOTE_MAX, label="Note", multiline=True)
    if errors:
        raise ValidationError(errors)
    if variant.position == 0:
        return Outcome("kept_control", None, clean_note)
    return Outcome("shipped", variant.key, clean_note)


def store(experiment: Experiment, outcome: Outcome | None, now: datetime) -> None:
    """Write (or, with None, clear) the experiment's outcome; the caller audits and commits."""
    experiment.outcome_result = outcome.result if outcome else None
    experiment.outcome_variant_key = outcome.variant_key if outcome else None
    experiment.outcome_note = (outcome.note or None) if outcome else None
    experiment.outcome_recorded_at = now if outcome else None


def of(experiment: Experiment) -> Outcome | None:
    """The experiment's recorded outcome, or None."""
    if not experiment.outcome_result:
        return None
    return Outcome(experiment.outcome_result, experiment.outcome_variant_key, experiment.outcome_note or "",
                   experiment.outcome_recorded_at)


def audit_details(outcome: Outcome | None) -> dict[str, Any]:
    """How an outcome is written into an audit row's details (nothing when none)."""
    if outcome is None:
        return {}
    return {"outcome": {"result": outcome.result, "variant_key": outcome.variant_key, "note": outcome.note}}


def as_json(experiment: Experiment) -> dict[str, Any] | None:
    """The export's `outcome`: {result, variant_key, note, recorded_at} or None (SPEC §10.7)."""
    outcome = of(experiment)
    if outcome is None:
        return None
    return {"result": outcome.result, "variant_key": outcome.variant_key, "note": outcome.note or None,
            "recorded_at": outcome.recorded_at.isoformat() if outcome.recorded_at else None}


def label(experiment: Experiment, outcome: Outcome | None = None) -> str:
    """An outcome in words, naming the arm: "Shipped Aria", "Kept the control (Sam)", "Inconclusive"."""
    outcome = outcome or of(experiment)
    if outcome is None:
        return ""
    names = {v.key: v.name for v in experiment.variants}
    if outcome.result == "shipped":
        return f"Shipped {names.get(outcome.variant_key, outcome.variant_key)}"
    if outcome.result == "kept_control":
        control = experiment.variants[0].name if experiment.variants else "the control"
        return f"Kept the control ({control})"
    return "Inconclusive"


def choices(experiment: Experiment) -> list[tuple[str, str]]:
    """The outcomes Stop offers: each treatment arm shipped, the control kept, inconclusive (value, words)."""
    variants = list(experiment.variants)
    shipped = [(SHIPPED_PREFIX + v.key, f"Shipped {v.name}") for v in variants[1:]]
    control = variants[0].name if variants else "the control"
    return shipped + [("kept_control", f"Kept the control ({control})"), ("inconclusive", "Inconclusive")]


def is_agent_persona(variant: Variant, agent: Agent) -> bool:
    """True when a persona arm is what the agent answers as today (its name, and its tone unless it keeps the
    agent's): the arm the page labels "default", whichever it was when the experiment began."""
    persona = variant.config.get("persona") if isinstance(variant.config, dict) else None
    if not isinstance(persona, dict) or persona.get("name") != agent.persona_name:
        return False
    return "tone" not in persona or (persona.get("tone") or "") == (agent.persona_tone or "")
