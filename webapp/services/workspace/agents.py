"""Agents, their settings, and the read-only lists of their conversations and leads."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from webapp import authz
from webapp.extensions import db
from webapp.models import Agent, ApiKey, AuditEvent, Conversation, Experiment, GoalEvent, Lead, Role, Variant, Workspace
from webapp.services.workspace import audit
from webapp.services import validation
from webapp.services.errors import BadRequest, NotFound, ValidationError

T = TypeVar("T")

NAME_MAX = 120
PERSONA_NAME_MAX = 60
PERSONA_TONE_MAX = 200
INSTRUCTIONS_MAX = 20_000


@dataclass
class Page(Generic[T]):
    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def paginate(query: sa.Select, page: int, per_page: int) -> Page:
    """One page of a select, 1-based; out-of-range pages clamp."""
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    items = list(db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)))
    return Page(items, page, per_page, total)


NO_SUCH_AGENT = "No such agent."


def agent_for(actor_id: int | None, agent_id: int, action: str = "view") -> tuple[Agent, Role]:
    """The agent if the actor may do `action` on it: another workspace's agent is a 404."""
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(NO_SUCH_AGENT)
    role = authz.require(actor_id, agent.workspace_id, action, missing=NO_SUCH_AGENT)
    return agent, role


def list_agents(actor_id: int, workspace_id: int) -> list[Agent]:
    authz.require(actor_id, workspace_id, "view")
    return list(db.session.scalars(sa.select(Agent).where(Agent.workspace_id == workspace_id).order_by(Agent.name)))


def _settings(data: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    return {
        "persona_name": validation.text(data.get("persona_name"), "persona_name", errors, min_len=1,
                                        max_len=PERSONA_NAME_MAX, label="Persona name"),
        "persona_tone": validation.text(data.get("persona_tone"), "persona_tone", errors,
                                        max_len=PERSONA_TONE_MAX, label="Tone"),
        "instructions": validation.text(data.get("instructions"), "instructions", errors,
                                        max_len=INSTRUCTIONS_MAX, label="Instructions", multiline=True),
    }


def create_agent(actor_id: int | None, workspace_id: int, name: str, persona_name: str | None = None,
                 persona_tone: str = "", instructions: str = "") -> Agent:
    """Create an agent. `actor_id=None` is the CLI acting as the system."""
    if actor_id is not None:
        authz.require(actor_id, workspace_id, "create_agent")
    elif db.session.get(Workspace, workspace_id) is None:
        raise NotFound("No such workspace.")
    errors: dict[str, str] = {}
    name = validation.text(name, "name", errors, min_len=1, max_len=NAME_MAX, label="Name")
    persona_blank = persona_name is None or (isinstance(persona_name, str) and not persona_name.strip())
    settings = _settings({"persona_name": name if persona_blank else persona_name, "persona_tone": persona_tone,
                          "instructions": instructions}, errors)
    if persona_blank and "persona_name" in errors:  # the default (the agent's name) does not fit
        if "name" in errors:
            del errors["persona_name"]  # the name's own message says what is wrong
        else:
            errors["persona_name"] = (f"Persona name is required when the agent's name is longer than "
                                      f"{PERSONA_NAME_MAX} characters.")
    if errors:
        raise ValidationError(errors)
    agent = Agent(workspace_id=workspace_id, name=name, **settings)
    db.session.add(agent)
    db.session.flush()
    audit.record(workspace_id, actor_id, "agent.created", "agent", agent.id, {"name": name})
    db.session.commit()
    return agent


def update_settings(actor_id: int, agent_id: int, data: dict[str, Any]) -> Agent:
    """Edit the agent's default persona and instructions (editors may); a save that changes nothing writes no audit row."""
    agent, _ = agent_for(actor_id, agent_id, "edit_agent")
    errors: dict[str, str] = {}
    name = validation.text(data.get("name", agent.name), "name", errors, min_len=1, max_len=NAME_MAX, label="Name")
    settings = _settings(data, errors)
    if errors:
        raise ValidationError(errors)
    before = {"name": agent.name, "persona_name": agent.persona_name, "persona_tone": agent.persona_tone}
    instructions_before = agent.instructions
    agent.name = name
    for field, value in settings.items():
        setattr(agent, field, value)
    changed = {k: {"from": v, "to": getattr(agent, k)} for k, v in before.items() if getattr(agent, k) != v}
    if agent.instructions != instructions_before:
        changed["instructions"] = "edited"
    if changed:
        audit.record(agent.workspace_id, actor_id, "agent.settings_updated", "agent", agent.id, changed)
    db.session.commit()
    return agent


@dataclass
class ExperimentOption:
    """An experiment to filter by: live or deleted (then "<name> (deleted)", or by its id), with its variant keys
    and, for a live experiment, their names (a deleted one is known by its keys only)."""

    id: int
    label: str
    variant_keys: list[str]
    variant_names: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> name, as a person reads it

    def variant_name(self, key: str) -> str:
        """The arm's name (a stamped key no arm has any more reads as itself)."""
        return self.variant_names.get(key) or key


@dataclass
class StampedList(Generic[T]):
    """A page of stamped rows (conversations or leads) with a label for every experiment id they carry."""

    page: Page[T]
    labels: dict[int, str]
    options: list[ExperimentOption]
    by_id: dict[int, ExperimentOption] = dataclasses.field(default_factory=dict)  # each row's experiment, for its arm's name


def _experiment_options(agent: Agent) -> list[ExperimentOption]:
    """The agent's live experiments and the deleted ones its conversations still carry, newest first."""
    agent_id = agent.id
    names = dict(db.session.execute(
        sa.select(Experiment.id, Experiment.name).where(Experiment.agent_id == agent_id)).all())
    keys: dict[int, set[str]] = {experiment_id: set() for experiment_id in names}
    stamped = sa.select(Conversation.experiment_id, Conversation.variant_key).where(
        Conversation.agent_id == agent_id, Conversation.experiment_id.is_not(None)).distinct()
    live = sa.select(Variant.experiment_id, Variant.key).join(Experiment).where(Experiment.agent_id == agent_id)
    for experiment_id, key in db.session.execute(stamped.union(live)).all():
        keys.setdefault(experiment_id, set()).add(key)
    arm_names: dict[int, dict[str, str]] = {}
    for experiment_id, key, name in db.session.execute(
            sa.select(Variant.experiment_id, Variant.key, Variant.name).join(Experiment)
            .where(Experiment.agent_id == agent_id)).all():
        arm_names.setdefault(experiment_id, {})[key] = name
    deleted_labels, deleted_arms = _deleted_experiments(agent.workspace_id, set(keys) - set(names))
    names.update(deleted_labels)
    arm_names.update(deleted_arms)
    return [ExperimentOption(i, names.get(i, f"deleted experiment #{i}"), sorted(keys[i]), arm_names.get(i, {}))
            for i in sorted(keys, reverse=True)]


def deleted_experiment_labels(workspace_id: int, experiment_ids: set[int]) -> dict[int, str]:
    """Labels "<name> (deleted)" of the deleted experiments whose deletion audit row records the name."""
    return _deleted_experiments(workspace_id, experiment_ids)[0]


def _deleted_experiments(workspace_id: int, experiment_ids: set[int]) -> tuple[dict[int, str], dict[int, dict[str, str]]]:
    """Labels "<name> (deleted)" and arm names (key -> name) of the deleted experiments, as their deletion audit row
    recorded them (old rows recorded no name)."""
    if not experiment_ids:
        return {}, {}
    events = list(db.session.scalars(
        audit.experiment_deletions(workspace_id, AuditEvent.target_id.in_(experiment_ids))))
    labels = {e.target_id: f"{audit.deleted_name(e)} (deleted)" for e in events if audit.deleted_name(e)}
    arms = {e.target_id: {a["key"]: a["name"] for a in e.details.get("arms") or []
                          if isinstance(a, dict) and isinstance(a.get("key"), str) and isinstance(a.get("name"), str)}
            for e in events if isinstance(e.details, dict)}
    return labels, arms


def stamped_list(model: type[Conversation] | type[Lead], time_column: InstrumentedAttribute, actor_id: int,
                 agent_id: int, page: int, per_page: int, experiment_id: int | None,
                 variant_key: str | None, where: tuple[Any, ...] = ()) -> StampedList:
    """The agent's rows of `model`, newest first, optionally filtered by the experiment and variant key they carry
    (and by the further conditions `where`).

    The experiment must be one of the agent's, live or deleted (then known by its stamps): any other id is a 404;
    a variant key with an experiment must be one of that experiment's keys (a 400 naming `variant`)."""
    agent, _ = agent_for(actor_id, agent_id)
    options = _experiment_options(agent)
    if experiment_id is not None:
        option = next((o for o in options if o.id == experiment_id), None)
        if option is None:
            raise NotFound("No such experiment.")
        if variant_key and variant_key not in option.variant_keys:
            raise BadRequest(f"variant must be one of the keys of “{option.label}”: "
                             f"{', '.join(option.variant_keys)} (got “{variant_key}”).")
    query = sa.select(model).where(model.agent_id == agent_id)
    if experiment_id is not None:
        query = query.where(model.experiment_id == experiment_id)
    if variant_key:
        query = query.where(model.variant_key == variant_key)
    query = query.where(*where).order_by(time_column.desc(), model.id.desc())
    return StampedList(paginate(query, page, per_page), {o.id: o.label for o in options}, options,
                       {o.id: o for o in options})


def leads(actor_id: int, agent_id: int, page: int = 1, per_page: int = 50,
          experiment_id: int | None = None, variant_key: str | None = None) -> StampedList[Lead]:
    """The agent's leads, newest first, optionally filtered by experiment and variant key."""
    return stamped_list(Lead, Lead.captured_at, actor_id, agent_id, page, per_page, experiment_id, variant_key)


def overview(actor_id: int, agent_id: int) -> dict[str, int]:
    """Counts for the overview tab."""
    agent_for(actor_id, agent_id)
    conv = db.session.scalar(sa.select(sa.func.count()).where(Conversation.agent_id == agent_id))
    lead = db.session.scalar(sa.select(sa.func.count()).where(Lead.agent_id == agent_id))
    visitors = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Conversation.visitor_id))).where(Conversation.agent_id == agent_id))
    return {"conversations": conv, "leads": lead, "visitors": visitors}


@dataclass(frozen=True)
class Integration:
    """What the Connect page says of an agent's integration: the last message the runtime reported, the last goal
    event, and whether the workspace has a live key (and when one was last used)."""

    agent: Agent
    last_message_at: Any  # datetime | None: the latest message time of the agent's conversations
    last_conversation: str | None
    conversations: int
    last_event_at: Any
    live_keys: int
    key_last_used_at: Any
    may_manage_keys: bool


def integration(actor_id: int, agent_id: int) -> Integration:
    """The Connect page's status lines (SPEC §13: "last message received …"), for every member of the workspace."""
    agent, role = agent_for(actor_id, agent_id)
    last = db.session.execute(
        sa.select(Conversation.last_message_at, Conversation.external_id).where(Conversation.agent_id == agent_id)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1)).first()
    conversations = db.session.scalar(sa.select(sa.func.count()).where(Conversation.agent_id == agent_id))
    last_event = db.session.scalar(sa.select(sa.func.max(GoalEvent.occurred_at)).where(GoalEvent.agent_id == agent_id))
    keys = db.session.execute(
        sa.select(sa.func.count(), sa.func.max(ApiKey.last_used_at))
        .where(ApiKey.workspace_id == agent.workspace_id, ApiKey.revoked_at.is_(None))).one()
    return Integration(agent, last.last_message_at if last else None, last.external_id if last else None,
                       conversations or 0, last_event, keys[0], keys[1], authz.allows(role, "manage_api_keys"))
