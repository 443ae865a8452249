"""Experiments (SPEC §3): validation, lifecycle, the active-experiment rule, the audit trail.

Input of `create_experiment` / `update_experiment` is a dict with `name`, `kind`, `hypothesis` and
`variants`: a list of dicts with `key`, `name`, `weight` (int or digit string) and `config` (a dict
or a JSON string). Persona experiments may also give `persona_name` / `persona_tone` per variant:
when non-empty they win over `config["persona"]["name"/"tone"]`, so a form can offer plain fields
and the raw JSON side by side; CTA and trigger experiments likewise `cta_label`, `cta_url`, `cta_prompt`,
`trigger_on`, `trigger_seconds`, `trigger_percent`, `trigger_opening_message` (`configs`). Field errors are keyed
like the form: `variants-<index>-<field>`. The analysis settings (SPEC §10.1) come in the same dict under the names of
`analysis.FIELDS`.
"""
from __future__ import annotations

import json
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp import authz
from webapp.extensions import db
from webapp.models import EXPERIMENT_KINDS, Agent, AuditEvent, Experiment, ExperimentAssignment, Variant, utcnow
from webapp.services.experiments import configs, history, outcomes
from webapp.services.workspace import audit
from webapp.services import validation
from webapp.services.experiments import analysis
from webapp.services.workspace.agents import PERSONA_NAME_MAX, PERSONA_TONE_MAX, agent_for
from webapp.services.errors import Conflict, NotFound, ValidationError

MIN_VARIANTS = 2
MAX_VARIANTS = 10
MIN_WEIGHT = 1
MAX_WEIGHT = 10_000
NAME_MAX = 120
HYPOTHESIS_MAX = 2_000
VARIANT_NAME_MAX = 120
CONFIG_MAX_BYTES = 8 * 1024
DUPLICATE_PREFIX = "Copy of "


class NeedsConfirmation(Conflict):
    """Starting while other experiments of the agent run: the caller must choose a start mode."""

    def __init__(self, running: list[Experiment]):
        names = ", ".join(f"“{e.name}”" for e in running)
        super().__init__(f"{names} {'is' if len(running) == 1 else 'are'} running on this agent.")
        self.running = running


START_MODES = ("stop_others", "anyway")


@dataclass
class ExperimentRow:
    experiment: Experiment
    visitors: int
    is_active: bool
    outcome: str = ""  # the recorded outcome in words ("Shipped Aria"), "" when none
    outcome_lift: dict[str, Any] | None = None  # results.outcome_lift: the shipped arm on the primary metric


@dataclass(frozen=True)
class DeletedExperiment:
    """An experiment deleted from the agent, as its deletion's audit row recorded it."""
    id: int
    name: str
    kind: str
    status: str
    visitors: int
    deleted_by: str
    deleted_at: datetime


@dataclass
class ExperimentDetail:
    experiment: Experiment
    variants: list[Variant]
    shares: list[float]
    is_active: bool
    active: Experiment | None
    running_others: list[Experiment]
    events: list[AuditEvent]
    outcome_lift: dict[str, Any] | None = None  # results.outcome_lift of a recorded outcome that ships an arm
    trail: list[history.TrailEntry] = dataclasses.field(default_factory=list)  # the events as sentences


def active_experiment_query(agent_id: int) -> sa.Select:
    """The agent's active experiment: running, latest started_at, ties to the higher id (SPEC §3)."""
    return (sa.select(Experiment)
            .where(Experiment.agent_id == agent_id, Experiment.status == "running")
            .order_by(Experiment.started_at.desc(), Experiment.id.desc())
            .limit(1))


def active_experiment(agent_id: int) -> Experiment | None:
    """The agent's active experiment, or None."""
    return db.session.scalar(active_experiment_query(agent_id))


def running_experiments(agent_id: int) -> list[Experiment]:
    """The agent's running experiments, the active one first (SPEC §3: the latest started); the others assign no
    new visitors while it runs, and their stamped conversations keep their variants."""
    return list(db.session.scalars(active_experiment_query(agent_id).limit(None)))


def shares(weights: list[int]) -> list[float]:
    """Each weight's share of the total, in percent (weights are normalised, SPEC §3)."""
    total = sum(weights)
    return [100.0 * w / total if total else 0.0 for w in weights]


OutcomeLift = Callable[[Experiment], "dict[str, Any] | None"]  # results.outcome_lift (results imports this module)


def _lift_of(experiment: Experiment, outcome_lift: OutcomeLift | None) -> dict[str, Any] | None:
    return outcome_lift(experiment) if outcome_lift and experiment.outcome_variant_key else None


def list_for_agent(actor_id: int, agent_id: int, outcome_lift: OutcomeLift | None = None) -> list[ExperimentRow]:
    """The agent's experiments, newest first, with visitors so far and the active flag (and, given `outcome_lift`,
    the primary metric's lift of each shipped arm)."""
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
    return [ExperimentRow(e, n, active is not None and e.id == active.id, outcomes.label(e), _lift_of(e, outcome_lift))
            for e, n in rows]


def deleted_for_agent(actor_id: int, agent_id: int, limit: int = 20) -> list[DeletedExperiment]:
    """The agent's deleted experiments, newest deletion first, for everyone who may view its experiments.

    A deleted experiment has no page left for its audit trail: its deletion row (name, kind, status, who, when)
    is what remains, with the visitors its assignment rows still count."""
    agent, _ = agent_for(actor_id, agent_id)
    events = db.session.scalars(
        audit.experiment_deletions(agent.workspace_id, AuditEvent.details["agent_id"].as_integer() == agent_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)).all()
    ids = [e.target_id for e in events]
    visitors = dict(db.session.execute(
        sa.select(ExperimentAssignment.experiment_id, sa.func.count())
        .where(ExperimentAssignment.agent_id == agent_id, ExperimentAssignment.experiment_id.in_(ids))
        .group_by(ExperimentAssignment.experiment_id)).all()) if ids else {}
    return [DeletedExperiment(e.target_id, audit.deleted_name(e) or f"experiment #{e.target_id}",
                              str(e.details.get("kind") or ""), str(e.details.get("status") or ""),
                              visitors.get(e.target_id, 0), e.actor_email, e.created_at)
            for e in events]


def experiment_for(actor_id: int, agent_id: int, experiment_id: int, action: str = "view") -> Experiment:
    """The experiment if it belongs to the agent and the actor may do `action`.

    The id is looked up before the role is checked (SPEC §2: ids do not leak): another workspace's agent, an
    experiment of another agent or of another workspace, or no experiment at all is a 404 for every role; only an
    experiment of this agent that the member's role may not act on is a 403.
    """
    _, role = agent_for(actor_id, agent_id)
    experiment = db.session.get(Experiment, experiment_id)
    if experiment is None or experiment.agent_id != agent_id:
        raise NotFound("No such experiment.")
    authz.require_role(role, action)
    return experiment


def _running_others(experiment: Experiment) -> list[Experiment]:
    return list(db.session.scalars(
        sa.select(Experiment)
        .where(Experiment.agent_id == experiment.agent_id, Experiment.status == "running",
               Experiment.id != experiment.id)
        .order_by(Experiment.started_at.desc(), Experiment.id.desc())
    ))


def detail(actor_id: int, agent_id: int, experiment_id: int, outcome_lift: OutcomeLift | None = None) -> ExperimentDetail:
    """Everything the experiment page shows: arms and shares, active state, other runs, audit trail (and, given
    `outcome_lift`, the shipped arm's lift)."""
    experiment = experiment_for(actor_id, agent_id, experiment_id)
    variants = list(experiment.variants)
    active = active_experiment(agent_id)
    events = audit.events_for("experiment", experiment.id)
    return ExperimentDetail(
        experiment=experiment,
        variants=variants,
        shares=shares([v.weight for v in variants]),
        is_active=active is not None and active.id == experiment.id,
        active=active,
        running_others=_running_others(experiment),
        events=events,
        outcome_lift=_lift_of(experiment, outcome_lift),
        trail=history.trail(experiment, events),
    )


def default_variants(agent_id: int, kind: str) -> list[dict[str, Any]]:
    """The new-experiment form's starting rows: control (the agent's persona) and treatment, 50/50."""
    agent = db.session.get(Agent, agent_id)
    control: dict[str, Any] = {"key": "control", "name": "Control", "weight": 50, "config": {}}
    treatment: dict[str, Any] = {"key": "treatment", "name": "Treatment", "weight": 50, "config": {}}
    if kind == "persona" and agent is not None:
        persona = {"name": agent.persona_name}
        if agent.persona_tone:
            persona["tone"] = agent.persona_tone
        control["config"] = {"persona": persona}
    return [control, treatment]


def new_variant(existing_keys: list[str]) -> dict[str, Any]:
    """A fresh row for the form: the first free `treatment-N` key, weight 50, empty config."""
    n = 2
    while f"treatment-{n}" in existing_keys:
        n += 1
    return {"key": f"treatment-{n}", "name": f"Treatment {n}", "weight": 50, "config": {}}


# --- validation -------------------------------------------------------------------------------


def typed_weight(value: Any) -> int:
    """A weight as typed into the form, as the live shares count it (app.js: experimentWeights): the weight when
    it is valid, else 0."""
    errors: dict[str, str] = {}
    weight = _weight(value, "weight", errors)
    return 0 if errors else weight


def _weight(value: Any, field: str, errors: dict[str, str]) -> int:
    if isinstance(value, bool) or value is None or value == "":
        errors[field] = "Weight is required: a whole number from 1 to 10,000."
        return 0
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.lstrip("-").isdigit():
            errors[field] = f"Weight must be a whole number from 1 to 10,000 (got “{text[:20]}”)."
            return 0
        if len(text) > 9:
            errors[field] = "Weight must be from 1 to 10,000 (got a huge number)."
            return 0
        value = int(text)
    if not isinstance(value, int):
        errors[field] = "Weight must be a whole number from 1 to 10,000."
        return 0
    if not MIN_WEIGHT <= value <= MAX_WEIGHT:
        errors[field] = f"Weight must be from 1 to 10,000 (got {value:,})."
        return 0
    return value


def _config(value: Any, field: str, errors: dict[str, str]) -> dict[str, Any] | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        if len(value.encode("utf-8")) > 4 * CONFIG_MAX_BYTES:
            errors[field] = "Config must be at most 8 KB of JSON."
            return None
        try:
            value = validation.parse_json(value)
        except ValueError as error:
            errors[field] = f"Config is not valid JSON: {error}."
            return None
        except RecursionError:
            errors[field] = validation.too_deep("Config")
            return None
    if not isinstance(value, dict):
        errors[field] = "Config must be a JSON object, e.g. {\"persona\": {\"name\": \"Aria\"}}."
        return None
    # Before json.dumps measures it; NUL in a key or string at any depth: PostgreSQL stores no NUL in text (the
    # persona's name and tone become the agent's at Promote) and SQLite would keep it.
    validation.json_value(value, field, errors, label="Config", refuse_nul=True)
    return None if field in errors else value


def config_object(text: str) -> dict[str, Any] | None:
    """A form row's config JSON as the object it holds, or None when validation would refuse it."""
    errors: dict[str, str] = {}
    config = _config(text, "config", errors)
    return None if errors else config


def _persona(config: dict[str, Any], variant: dict[str, Any], prefix: str, errors: dict[str, str]) -> None:
    """Merge the persona fields into config["persona"] and check name 1–60, tone ≤ 200.

    A non-blank form field wins over the JSON's value; a blank one leaves the JSON's. The tone is absent (keep the
    agent's) or a string that replaces the agent's — "" (after trimming) for no tone at all."""
    persona = config.get("persona", {})
    if not isinstance(persona, dict):
        errors[f"{prefix}-config"] = "config.persona must be an object with a name and an optional tone."
        return
    persona = dict(persona)
    posted_name, posted_tone = variant.get("persona_name"), variant.get("persona_tone")
    if isinstance(posted_name, str) and posted_name.strip():
        persona["name"] = posted_name
    if isinstance(posted_tone, str) and posted_tone.strip():
        persona["tone"] = posted_tone
    # Errors go where the user typed: the plain fields when the form posted them, else the JSON.
    name_field = f"{prefix}-persona_name" if posted_name is not None else f"{prefix}-config"
    tone_field = f"{prefix}-persona_tone" if posted_tone is not None else f"{prefix}-config"
    persona["name"] = validation.text(persona.get("name"), name_field, errors, min_len=1, max_len=PERSONA_NAME_MAX,
                                      label="Persona name")
    if persona.get("tone") is None:
        persona.pop("tone", None)  # absent: keep the agent's tone (SPEC §3)
    else:  # a string, even empty (0–200 characters): it replaces the agent's; "" (or blanks) means no tone
        persona["tone"] = validation.text(persona["tone"], tone_field, errors, max_len=PERSONA_TONE_MAX, label="Tone")
    config["persona"] = persona


def _clean_variants(kind: str, variants: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
    if not isinstance(variants, list) or not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        count = len(variants) if isinstance(variants, list) else 0
        errors["variants"] = f"An experiment needs 2 to 10 variants (got {count})."
        return []
    clean: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, variant in enumerate(variants):
        prefix = f"variants-{index}"
        if not isinstance(variant, dict):
            errors[prefix] = "Each variant must be an object."
            continue
        key = validation.slug(variant.get("key"), f"{prefix}-key", errors, label="Key")
        if key and f"{prefix}-key" not in errors:
            if key in seen:
                errors[f"{prefix}-key"] = f"Key “{key}” is already used by variant {seen[key] + 1}; keys are unique."
            seen.setdefault(key, index)
        name = validation.text(variant.get("name"), f"{prefix}-name", errors, min_len=1, max_len=VARIANT_NAME_MAX,
                               label="Name")
        weight = _weight(variant.get("weight"), f"{prefix}-weight", errors)
        config = _config(variant.get("config"), f"{prefix}-config", errors)
        if config is not None:
            config = dict(config)
            if kind == "persona":
                _persona(config, variant, prefix, errors)
            else:
                configs.clean_typed_block(kind, config, variant, prefix, errors)
            size = len(json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            if size > CONFIG_MAX_BYTES:
                errors[f"{prefix}-config"] = f"Config must be at most 8 KB of JSON (got {size:,} bytes)."
        clean.append({"key": key, "name": name, "weight": weight, "config": config, "position": index})
    return clean


def _clean_text(data: dict[str, Any], experiment: Experiment | None, errors: dict[str, str]) -> tuple[str, str]:
    name = validation.text(data.get("name", experiment.name if experiment else None), "name", errors,
                           min_len=1, max_len=NAME_MAX, label="Name")
    hypothesis = validation.text(data.get("hypothesis", experiment.hypothesis if experiment else ""), "hypothesis",
                                 errors, max_len=HYPOTHESIS_MAX, label="Hypothesis", multiline=True)
    return name, hypothesis


def _clean_kind(value: Any, errors: dict[str, str]) -> str:
    if value not in EXPERIMENT_KINDS:
        errors["kind"] = f"Kind must be one of: {', '.join(EXPERIMENT_KINDS)}."
        return ""
    return value


def validate(data: dict[str, Any], agent_id: int | None = None) -> dict[str, Any]:
    """Check a whole new experiment (name, kind, hypothesis, variants, analysis settings over the defaults) of
    `agent_id`; ValidationError on any bad field."""
    errors: dict[str, str] = {}
    name, hypothesis = _clean_text(data, None, errors)
    kind = _clean_kind(data.get("kind"), errors)
    variants = _clean_variants(kind, data.get("variants"), errors)
    settings = analysis.validate(data, analysis.DEFAULTS, None, errors, agent_id)
    if errors:
        raise ValidationError(errors)
    return {"name": name, "hypothesis": hypothesis, "kind": kind, "variants": variants, "analysis": settings}


def _arms(experiment: Experiment) -> list[dict[str, Any]]:
    return [{"key": v.key, "name": v.name, "weight": v.weight, "config": v.config} for v in experiment.variants]


def _set_arms(experiment: Experiment, variants: list[dict[str, Any]]) -> None:
    experiment.variants.clear()
    db.session.flush()  # free the (experiment, key) and (experiment, position) slots before reuse
    experiment.variants.extend(Variant(**v) for v in variants)


# --- create and edit --------------------------------------------------------------------------


def create_experiment(actor_id: int, agent_id: int, data: dict[str, Any]) -> Experiment:
    """Create a draft experiment with its variants."""
    agent, _ = agent_for(actor_id, agent_id, "manage_experiments")
    clean = validate(data, agent_id)
    experiment = Experiment(agent_id=agent_id, name=clean["name"], hypothesis=clean["hypothesis"],
                            kind=clean["kind"], status="draft", created_by_id=actor_id)
    analysis.apply(experiment, clean["analysis"])
    experiment.variants = [Variant(**v) for v in clean["variants"]]
    db.session.add(experiment)
    db.session.flush()
    audit.record(agent.workspace_id, actor_id, "experiment.created", "experiment", experiment.id,
                 {"name": experiment.name, "kind": experiment.kind, "arms": _arms(experiment),
                  "analysis": clean["analysis"].as_dict()})
    db.session.commit()
    return experiment


def _hold(experiment: Experiment, statuses: tuple[str, ...]) -> bool:
    """Write-lock the experiment's row if its status is still one of `statuses`, and reload it.

    A no-op UPDATE guarded by the status: on PostgreSQL it waits for a concurrent lifecycle change and
    re-checks the status afterwards; on SQLite it takes the database write lock. Either way the check
    and the change that follows see the same status, so a concurrent Start cannot slip in between.
    """
    held = db.session.execute(
        sa.update(Experiment).where(Experiment.id == experiment.id, Experiment.status.in_(statuses))
        .values(status=Experiment.status).execution_options(synchronize_session=False)).rowcount
    db.session.refresh(experiment)
    return bool(held)


def update_experiment(actor_id: int, agent_id: int, experiment_id: int, data: dict[str, Any]) -> Experiment:
    """Edit name, hypothesis and analysis settings (always) and, in draft only, kind and variants (absent keys keep
    their value). Changing the analysis settings never touches the arms or the assignments."""
    experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    changes_analysis = analysis.posted(data)
    if changes_analysis:
        authz.require(actor_id, experiment.agent.workspace_id, "change_analysis")
    changes_arms = "variants" in data or ("kind" in data and data["kind"] != experiment.kind)
    if changes_arms and not _hold(experiment, ("draft",)):
        raise Conflict("Variants, weights, configs and kind are frozen once an experiment has started; "
                       "duplicate it to change them.")
    errors: dict[str, str] = {}
    name, hypothesis = _clean_text(data, experiment, errors)
    kind, variants = experiment.kind, None
    if changes_arms:
        kind = _clean_kind(data.get("kind", experiment.kind), errors)
        variants = _clean_variants(kind, data["variants"] if "variants" in data else _arms(experiment), errors)
    current = analysis.settings_of(experiment)
    settings = analysis.validate(data, current, experiment, errors) if changes_analysis else current
    if errors:
        raise ValidationError(errors)
    changed: dict[str, Any] = {}
    for field, value in (("name", name), ("hypothesis", hypothesis), ("kind", kind)):
        if getattr(experiment, field) != value:
            changed[field] = {"from": getattr(experiment, field), "to": value}
            setattr(experiment, field, value)
    before = _arms(experiment)
    if variants is not None and before != [{k: v[k] for k in ("key", "name", "weight", "config")} for v in variants]:
        _set_arms(experiment, variants)
        changed["arms"] = {"from": before, "to": _arms(experiment)}
    if changed:
        audit.record(experiment.agent.workspace_id, actor_id, "experiment.edited", "experiment", experiment.id, changed)
    settings_changed = analysis.apply(experiment, settings)
    if settings_changed:
        audit.record(experiment.agent.workspace_id, actor_id, "experiment.analysis_changed", "experiment",
                     experiment.id, settings_changed)
    db.session.commit()
    return experiment


# --- lifecycle --------------------------------------------------------------------------------


def _lock_agent(agent_id: int) -> None:
    """Serialise lifecycle changes of one agent (PostgreSQL row lock; SQLite locks the whole file on write)."""
    db.session.execute(sa.select(Agent.id).where(Agent.id == agent_id).with_for_update())


def start_experiment(actor_id: int, agent_id: int, experiment_id: int, mode: str | None = None) -> Experiment:
    """Start a draft or resume a stopped experiment.

    If others run on the agent, `mode` must say what to do: "stop_others" stops them in the same
    transaction; "anyway" starts alongside them (mixed populations). Without it: NeedsConfirmation.
    """
    experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    if mode not in (None, "", *START_MODES):
        raise ValidationError({"mode": f"Start mode must be one of: {', '.join(START_MODES)}."})
    _lock_agent(agent_id)
    if not _hold(experiment, ("draft", "stopped")):
        raise Conflict(f"“{experiment.name}” is already running.")
    others = _running_others(experiment)
    if others and not mode:
        raise NeedsConfirmation(others)
    workspace_id = experiment.agent.workspace_id
    now = utcnow()
    if others and mode == "stop_others":
        for other in others:
            other.status, other.stopped_at = "stopped", now
            audit.record(workspace_id, actor_id, "experiment.stopped", "experiment", other.id,
                         {"reason": f"replaced by “{experiment.name}”", "replaced_by": experiment.id})
    action = "experiment.resumed" if experiment.status == "stopped" else "experiment.started"
    experiment.status, experiment.started_at, experiment.stopped_at = "running", now, None
    details: dict[str, Any] = {}
    if others:
        details = {"mode": mode, "others": [{"id": o.id, "name": o.name} for o in others]}
    if outcomes.of(experiment) is not None:  # a resumed experiment has not ended: its outcome goes (SPEC §10.6)
        details["cleared_outcome"] = outcomes.audit_details(outcomes.of(experiment))["outcome"]
        outcomes.store(experiment, None, now)
    audit.record(workspace_id, actor_id, action, "experiment", experiment.id, details)
    db.session.commit()
    return experiment


def stop_experiment(actor_id: int, agent_id: int, experiment_id: int, outcome: Any = None,
                    note: Any = None) -> Experiment:
    """Stop a running experiment: no new assignments; stamped conversations keep their variant.

    With `outcome` (`shipped:<key>`, `kept_control`, `inconclusive`) and an optional `note` it records what was
    decided (SPEC §10.6); without, none. A bad outcome or note is a ValidationError and nothing changes."""
    experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    stoppable = "Only a running experiment can be stopped; “{}” is {}."
    if experiment.status != "running":  # before the outcome's errors: a confirmation it cannot show
        raise Conflict(stoppable.format(experiment.name, experiment.status))
    decided = outcomes.parse(experiment, outcome, note)
    if not _hold(experiment, ("running",)):
        raise Conflict(stoppable.format(experiment.name, experiment.status))
    now = utcnow()
    experiment.status, experiment.stopped_at = "stopped", now
    if decided is not None:
        outcomes.store(experiment, decided, now)
    audit.record(experiment.agent.workspace_id, actor_id, "experiment.stopped", "experiment", experiment.id,
                 outcomes.audit_details(decided))
    db.session.commit()
    return experiment


def record_outcome(actor_id: int, agent_id: int, experiment_id: int, outcome: Any, note: Any = None) -> Experiment:
    """Record (or replace, or with a blank `outcome` clear) the outcome of a stopped experiment (SPEC §10.6)."""
    experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    recordable = "Only a stopped experiment has an outcome; “{}” is {}."
    if experiment.status != "stopped":  # before the outcome's errors: the page shows no outcome form to put them on
        raise Conflict(recordable.format(experiment.name, experiment.status))
    decided = outcomes.parse(experiment, outcome, note)
    if not _hold(experiment, ("stopped",)):
        raise Conflict(recordable.format(experiment.name, experiment.status))
    before = outcomes.of(experiment)
    if outcomes.audit_details(before) == outcomes.audit_details(decided):
        return experiment  # the same outcome and note again: nothing to record
    outcomes.store(experiment, decided, utcnow())
    audit.record(experiment.agent.workspace_id, actor_id, "experiment.outcome_recorded", "experiment", experiment.id,
                 {"outcome": outcomes.audit_details(decided).get("outcome"),
                  "previous": outcomes.audit_details(before).get("outcome")})
    db.session.commit()
    return experiment


def delete_experiment(actor_id: int, agent_id: int, experiment_id: int) -> str:
    """Delete a draft or stopped experiment and its variants; stamps elsewhere stay. Returns its name."""
    experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    if not _hold(experiment, ("draft", "stopped")):
        raise Conflict(f"“{experiment.name}” is running: stop it before deleting it.")
    name, agent = experiment.name, experiment.agent
    # The experiment's page goes with it: the row names its agent so the workspace activity can say where it was.
    audit.record(agent.workspace_id, actor_id, "experiment.deleted", "experiment", experiment.id,
                 {"name": name, "kind": experiment.kind, "status": experiment.status, "agent": agent.name,
                  "agent_id": agent.id, "arms": _arms(experiment)})
    db.session.delete(experiment)
    db.session.commit()
    return name


def duplicate_experiment(actor_id: int, agent_id: int, experiment_id: int) -> Experiment:
    """A new draft with the same kind, hypothesis, arms and analysis settings, named "Copy of …"."""
    source = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    name = (DUPLICATE_PREFIX + source.name)[:NAME_MAX]
    copy = Experiment(agent_id=agent_id, name=name, hypothesis=source.hypothesis, kind=source.kind, status="draft",
                      created_by_id=actor_id)
    analysis.apply(copy, analysis.settings_of(source))
    copy.variants = [Variant(key=v.key, name=v.name, weight=v.weight, config=dict(v.config), position=v.position)
                     for v in source.variants]
    db.session.add(copy)
    db.session.flush()
    workspace_id = source.agent.workspace_id
    audit.record(workspace_id, actor_id, "experiment.duplicated", "experiment", source.id,
                 {"copy_id": copy.id, "copy_name": copy.name})
    audit.record(workspace_id, actor_id, "experiment.created", "experiment", copy.id,
                 {"name": copy.name, "kind": copy.kind, "duplicated_from": source.id, "arms": _arms(copy)})
    db.session.commit()
    return copy


def promote_variant(actor_id: int, agent_id: int, experiment_id: int, variant_key: str,
                    note: Any = None) -> Experiment:
    """Copy a persona variant into the agent's defaults and stop the experiment, in one transaction.

    Records the outcome (SPEC §10.6): `shipped:<key>`, or `kept_control` when the control is promoted, with the
    optional `note`."""
    experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
    if experiment.kind != "persona":
        raise Conflict("Only persona experiments can be promoted: a CTA or trigger variant has no persona to copy.")
    if experiment.status == "draft":
        raise Conflict("Start the experiment before promoting one of its variants.")
    variant = next((v for v in experiment.variants if v.key == variant_key), None)
    if variant is None:
        raise ValidationError({"variant": "Choose one of this experiment's variants."})
    decided = outcomes.promoted(variant, note)
    persona = variant.config.get("persona") or {}
    if not persona.get("name"):
        raise Conflict(f"Variant “{variant.key}” has no persona name to promote.")
    agent = experiment.agent
    before = {"persona_name": agent.persona_name, "persona_tone": agent.persona_tone}
    agent.persona_name = persona["name"]
    if isinstance(persona.get("tone"), str):  # "" too: what its visitors got, no tone
        agent.persona_tone = persona["tone"]  # no tone in the variant: the agent keeps its own (SPEC §3)
    was_running, now = experiment.status == "running", utcnow()
    if was_running:
        experiment.status, experiment.stopped_at = "stopped", now
    outcomes.store(experiment, decided, now)
    after = {"persona_name": agent.persona_name, "persona_tone": agent.persona_tone}
    audit.record(agent.workspace_id, actor_id, "experiment.promoted", "experiment", experiment.id,
                 {"variant": variant.key, "from": before, "to": after, "stopped": was_running,
                  **outcomes.audit_details(decided)})
    audit.record(agent.workspace_id, actor_id, "agent.persona_promoted", "agent", agent.id,
                 {"experiment_id": experiment.id, "variant": variant.key, "from": before, "to": after})
    db.session.commit()
    return experiment
