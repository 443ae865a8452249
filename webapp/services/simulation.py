"""Synthetic traffic for an agent's active experiment (SPEC §9 `flask simulate`).

`plan_visitors()` draws realistic visitors — several conversations each, skewed message counts and
session lengths, timestamps spread over the past days — and `write_bulk()` stores them through
batched inserts, assigning each visitor exactly as the runtime would (SPEC §5 bucketing). The
HTTP mode of the CLI replays the same plans against the runtime API as a real client.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (MAX_DB_ID, Agent, Conversation, Experiment, ExperimentAssignment, Feedback, GoalEvent, Lead,
                           Message, utcnow)
from webapp.services import validation
from webapp.services.runtime import bucketing
from webapp.services.runtime.persona import effective_persona
from webapp.services.errors import ValidationError
from webapp.services.experiments.experiments import active_experiment

BASE_LEAD_RATE = 0.08
BASE_GOAL_RATE = 0.05
DEFAULT_GOAL = "booked_demo"  # the goal event a simulated visitor may reach (SPEC §13)
VISITOR_LINES = ("Hi, do you ship to Canada?", "What does the pro plan include?", "Can I book a demo?",
                 "How much is it per seat?", "Is there a free trial?", "Thanks!", "Do you integrate with Slack?")
AGENT_LINES = ("Happy to help!", "Here is what the plan includes.", "Sure, let me check that for you.",
               "You can start a free trial today.", "Would you like me to book a demo?")
# The agent's first message of every conversation names its persona, as a real one does ("Hi, I'm Aria…"): the
# transcripts show which persona spoke and the blinded review has a name to mask. PERSONA is replaced when the
# message is written (bulk) or sent (HTTP) by the conversation's effective persona name.
PERSONA = "{persona}"
GREETING = f"Hi, I'm {PERSONA}! How can I help you today?"
# Visitor feedback (SPEC §12): a conversation is rated with this probability; rated up with BASE_UP_RATE × the
# variant's --feedback-effect factor (capped at 1).
FEEDBACK_RATE = 0.3
BASE_UP_RATE = 0.6


@dataclass
class PlannedMessage:
    role: str
    text: str
    sent_at: datetime


@dataclass
class PlannedConversation:
    external_id: str
    messages: list[PlannedMessage]


@dataclass
class PlannedVisitor:
    visitor_id: str
    conversations: list[PlannedConversation]
    lead_draw: float  # uniform in [0, 1): a lead when below base rate × the variant's factor
    lead_conversation: int
    # Drawn from the visitor's own stream (see plan_visitors): adding the goal left every seed's visitors and leads.
    goal_draw: float = 1.0
    goal_conversation: int = 0

    def converts(self, factor: float, base_rate: float = BASE_LEAD_RATE) -> bool:
        return self.lead_draw < min(1.0, base_rate * factor)

    def reaches_goal(self, factor: float, base_rate: float = BASE_GOAL_RATE) -> bool:
        return self.goal_draw < min(1.0, base_rate * factor)

    def feedback(self, factor: float) -> list[str | None]:
        """Per conversation: "up", "down" or None (not rated), the up rate times the variant's `factor`.

        Drawn from the visitor's own generator (seeded by the visitor id), not the plan's: the plan's draws, and so
        a seed's visitors, conversations and leads, are the same as before feedback was simulated."""
        rng = random.Random(f"{self.visitor_id}:feedback")
        draws = [(rng.random(), rng.random()) for _ in self.conversations]
        return [None if rated >= FEEDBACK_RATE else ("up" if up < min(1.0, BASE_UP_RATE * factor) else "down")
                for rated, up in draws]


def with_persona(text: str, persona_name: str) -> str:
    """A planned message's text with the conversation's persona name in place of PERSONA."""
    return text.replace(PERSONA, persona_name)


@dataclass
class Summary:
    experiment_id: int
    visitors: int = 0
    conversations: int = 0
    messages: int = 0
    leads: int = 0
    goals: int = 0
    feedback: int = 0
    per_variant: dict[str, int] = field(default_factory=dict)


def parse_effects(pairs: list[str] | tuple[str, ...], variant_keys: list[str] | None,
                  field_name: str = "effect") -> dict[str, float]:
    """KEY=FACTOR pairs with positive factors; keys must name variants when `variant_keys` is given."""
    effects: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError({field_name: f"'{pair}' is not KEY=FACTOR (e.g. treatment=1.3)."})
        if variant_keys is not None and key not in variant_keys:
            raise ValidationError({field_name: f"'{key}' is not a variant of the experiment "
                                               f"(variants: {', '.join(variant_keys)})."})
        try:
            factor = float(value)
        except ValueError:
            factor = -1.0
        if not (factor > 0 and math.isfinite(factor)):
            raise ValidationError({field_name: f"the factor of '{key}' must be a positive number (got '{value}')."})
        effects[key] = factor
    return effects


def running_experiment(agent_id: int) -> Experiment:
    """The agent's active experiment, or a validation error saying that there is no such agent or nothing runs."""
    if not 1 <= agent_id <= MAX_DB_ID or db.session.get(Agent, agent_id) is None:
        raise ValidationError({"agent": f"there is no agent with id {agent_id}."})
    experiment = active_experiment(agent_id)
    if experiment is None:
        raise ValidationError({"agent": f"agent {agent_id} has no running experiment: start one first."})
    return experiment


def run_prefix(rng: random.Random) -> str:
    """The visitor-id prefix of a run: drawn from the seed, so a seed always names the same visitors."""
    return f"sim-{rng.getrandbits(40):010x}-"


def plan_visitors(count: int, days: float, rng: random.Random, now: datetime | None = None) -> Iterator[PlannedVisitor]:
    """Visitors with 1–5 conversations (mostly 1), lognormal message counts and gaps, over the past `days`.

    First visits are uniform over the window; a return visit comes 1–72 hours after the previous conversation,
    and one that would begin after `now` has not happened yet, so it is left out (not moved to `now`, which
    would pile conversations up at the end of the window)."""
    now = now or utcnow()
    span = timedelta(days=days).total_seconds()
    prefix = run_prefix(rng)
    for i in range(count):
        visitor_id = f"{prefix}{i}"
        n_conversations = 1
        while n_conversations < 5 and rng.random() < 0.35:
            n_conversations += 1
        start = now - timedelta(seconds=rng.uniform(0, span))
        conversations = []
        for c in range(n_conversations):
            turns = max(1, min(40, int(rng.lognormvariate(1.0, 0.6))))
            at, messages = start, []
            for _ in range(turns):
                messages.append(PlannedMessage("visitor", rng.choice(VISITOR_LINES), at))
                at += timedelta(seconds=rng.lognormvariate(1.5, 0.8))
                messages.append(PlannedMessage("agent", rng.choice(AGENT_LINES), at))
                at += timedelta(seconds=rng.lognormvariate(2.5, 0.9))
            messages[1] = PlannedMessage("agent", GREETING, messages[1].sent_at)  # no draw: the plan is unchanged
            overshoot = messages[-1].sent_at - now
            if overshoot > timedelta(0):  # history only: a conversation that would end in the future ends now
                messages = [PlannedMessage(m.role, m.text, m.sent_at - overshoot) for m in messages]
            if start < now:
                conversations.append(PlannedConversation(f"{visitor_id}-c{c}", messages))
            start = at + timedelta(hours=rng.uniform(1, 72))
        # The draws do not depend on how many return visits fit: a seed keeps its visitors and their leads.
        lead_draw, lead_conversation = rng.random(), rng.randrange(n_conversations)
        goal_rng = random.Random(f"{visitor_id}:goal")
        yield PlannedVisitor(visitor_id, conversations, lead_draw, min(lead_conversation, len(conversations) - 1),
                             goal_rng.random(), goal_rng.randrange(len(conversations)))


def parse_goal(goal: str | None) -> str | None:
    """The simulated goal's event name (None or "": no goal events), checked as the runtime API checks it."""
    if not goal:
        return None
    errors: dict[str, str] = {}
    validation.goal_name(goal, "goal", errors)
    if errors:
        raise ValidationError(errors)
    return goal


def persona_names(experiment: Experiment) -> dict[str, str]:
    """Each variant's effective persona name (SPEC §4), by key: what its agent messages call themselves."""
    agent = experiment.agent
    return {v.key: effective_persona(agent.persona_name, agent.persona_tone, experiment.kind, v.config).name
            for v in experiment.variants}


def write_bulk(experiment: Experiment, visitors: list[PlannedVisitor], effects: dict[str, float],
               summary: Summary, goal: str | None = None, goal_effects: dict[str, float] | None = None,
               feedback_effects: dict[str, float] | None = None) -> None:
    """Insert one batch of planned visitors, assigned and stamped as the runtime would; commits once."""
    variants = list(experiment.variants)
    names = persona_names(experiment)
    feedback_effects = feedback_effects or {}
    weights = [v.weight for v in variants]
    agent_id = experiment.agent_id
    chosen = [variants[bucketing.assign_position(experiment.id, pv.visitor_id, weights)] for pv in visitors]

    db.session.execute(sa.insert(ExperimentAssignment), [
        {"agent_id": agent_id, "experiment_id": experiment.id, "variant_id": v.id, "variant_key": v.key,
         "visitor_id": pv.visitor_id, "assigned_at": pv.conversations[0].messages[0].sent_at}
        for pv, v in zip(visitors, chosen)])

    conversation_rows, owners = [], []
    for pv, v in zip(visitors, chosen):
        for index, conv in enumerate(pv.conversations):
            lead = index == pv.lead_conversation and pv.converts(effects.get(v.key, 1.0))
            conversation_rows.append({
                "agent_id": agent_id, "external_id": conv.external_id, "visitor_id": pv.visitor_id,
                "experiment_id": experiment.id, "variant_id": v.id, "variant_key": v.key,
                "started_at": conv.messages[0].sent_at, "last_message_at": conv.messages[-1].sent_at,
                "session_seconds": (conv.messages[-1].sent_at - conv.messages[0].sent_at).total_seconds(),
                "visitor_messages": sum(1 for m in conv.messages if m.role == "visitor"),
                "lead_count": int(lead)})
            owners.append((pv, v, conv, lead))
    ids = db.session.scalars(
        sa.insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), conversation_rows).all()

    message_rows, lead_rows, goal_rows, feedback_rows = [], [], [], []
    ratings = {pv.visitor_id: iter(pv.feedback(feedback_effects.get(v.key, 1.0))) for pv, v in zip(visitors, chosen)}
    for conversation_id, (pv, v, conv, lead) in zip(ids, owners):
        message_rows.extend({"conversation_id": conversation_id, "role": m.role,
                             "text": with_persona(m.text, names[v.key]),
                             "sent_at": m.sent_at, "variant_id": v.id} for m in conv.messages)
        rating = next(ratings[pv.visitor_id])
        if rating is not None:
            feedback_rows.append({"agent_id": agent_id, "conversation_id": conversation_id,
                                  "visitor_id": pv.visitor_id, "rating": rating, "comment": "",
                                  "given_at": conv.messages[-1].sent_at, "experiment_id": experiment.id,
                                  "variant_id": v.id, "variant_key": v.key})
        if lead:
            lead_rows.append({"agent_id": agent_id, "conversation_id": conversation_id, "visitor_id": pv.visitor_id,
                              "fields": {"email": f"{pv.visitor_id}@example.com"},
                              "captured_at": conv.messages[-1].sent_at, "experiment_id": experiment.id,
                              "variant_id": v.id, "variant_key": v.key})
        if goal and conv is pv.conversations[pv.goal_conversation] and pv.reaches_goal((goal_effects or {}).get(v.key, 1.0)):
            goal_rows.append({"agent_id": agent_id, "conversation_id": conversation_id, "visitor_id": pv.visitor_id,
                              "name": goal, "occurred_at": conv.messages[-1].sent_at, "experiment_id": experiment.id,
                              "variant_id": v.id, "variant_key": v.key, "event_id": f"{conv.external_id}-{goal}"})
    db.session.execute(sa.insert(Message), message_rows)
    if lead_rows:
        db.session.execute(sa.insert(Lead), lead_rows)
    if goal_rows:
        db.session.execute(sa.insert(GoalEvent), goal_rows)
    if feedback_rows:
        db.session.execute(sa.insert(Feedback), feedback_rows)
    db.session.commit()

    summary.visitors += len(visitors)
    summary.conversations += len(conversation_rows)
    summary.messages += len(message_rows)
    summary.leads += len(lead_rows)
    summary.goals += len(goal_rows)
    summary.feedback += len(feedback_rows)
    for v in chosen:
        summary.per_variant[v.key] = summary.per_variant.get(v.key, 0) + 1


@dataclass
class BulkRun:
    """A checked bulk run: nothing is written until `run_bulk`."""

    experiment: Experiment
    visitors: int
    days: float
    factors: dict[str, float]
    seed: int
    goal: str | None = DEFAULT_GOAL
    goal_factors: dict[str, float] = field(default_factory=dict)
    feedback_factors: dict[str, float] = field(default_factory=dict)


def prepare_bulk(agent_id: int, visitors: int, days: float = 14, effects: list[str] | tuple[str, ...] = (),
                 seed: int | None = None, goal: str | None = DEFAULT_GOAL,
                 goal_effects: list[str] | tuple[str, ...] = (),
                 feedback_effects: list[str] | tuple[str, ...] = ()) -> BulkRun:
    """Check a bulk run's arguments, agent, running experiment, effects and seed; ValidationError names the problem."""
    errors: dict[str, str] = {}
    if not isinstance(visitors, int) or visitors < 1 or visitors > 10_000_000:
        errors["visitors"] = "visitors must be a whole number from 1 to 10,000,000."
    if not (0 < days <= 3650):
        errors["days"] = "days must be more than 0 and at most 3650."
    if errors:
        raise ValidationError(errors)
    experiment = running_experiment(agent_id)
    factors = parse_effects(effects, [v.key for v in experiment.variants])
    feedback_factors = parse_effects(feedback_effects, [v.key for v in experiment.variants], "feedback_effect")
    goal = parse_goal(goal)
    try:
        goal_factors = parse_effects(goal_effects, [v.key for v in experiment.variants])
    except ValidationError as error:
        raise ValidationError({"goal_effect": error.fields["effect"]}) from None
    if seed is None:
        seed = random.SystemRandom().randrange(2 ** 32)
    prefix = run_prefix(random.Random(seed))
    if db.session.scalar(sa.select(ExperimentAssignment.id).where(
            ExperimentAssignment.experiment_id == experiment.id,
            ExperimentAssignment.visitor_id.startswith(prefix, autoescape=True)).limit(1)):
        raise ValidationError({"seed": f"the visitors of seed {seed} are already in this experiment: use another --seed."})
    return BulkRun(experiment, visitors, days, factors, seed, goal, goal_factors, feedback_factors)


def run_bulk(run: BulkRun, batch_size: int = 1000, progress: Callable[[int], None] | None = None) -> Summary:
    """Write a prepared run's visitors in batches, reporting each batch's size to `progress`."""
    summary = Summary(run.experiment.id)
    batch: list[PlannedVisitor] = []
    for planned in plan_visitors(run.visitors, run.days, random.Random(run.seed)):
        batch.append(planned)
        if len(batch) >= batch_size:
            write_bulk(run.experiment, batch, run.factors, summary, run.goal, run.goal_factors, run.feedback_factors)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        write_bulk(run.experiment, batch, run.factors, summary, run.goal, run.goal_factors, run.feedback_factors)
        if progress:
            progress(len(batch))
    return summary


def simulate_bulk(agent_id: int, visitors: int, days: float = 14, effects: list[str] | tuple[str, ...] = (),
                  seed: int | None = None, batch_size: int = 1000,
                  progress: Callable[[int], None] | None = None, goal: str | None = DEFAULT_GOAL,
                  goal_effects: list[str] | tuple[str, ...] = (),
                  feedback_effects: list[str] | tuple[str, ...] = ()) -> Summary:
    """Generate `visitors` visitors of traffic for the agent's active experiment, in batches."""
    return run_bulk(prepare_bulk(agent_id, visitors, days, effects, seed, goal, goal_effects, feedback_effects),
                    batch_size, progress)
