"""Experiment results (SPEC §7): aggregation in SQL, statistics from `stats`.

Per visitor of the experiment (an assignment row): conversations, visitor messages, session
seconds and whether a lead was captured; then per variant the n, sums, sums of squares and sums
of products the statistics need. Python sees one row per variant (and per variant × day for the
charts), never a message.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import Conversation, Experiment, ExperimentAssignment, Lead, Message, Variant
from . import stats
from .agents import agent_for
from .errors import NotFound

METRICS = {
    "messages_per_conversation": {"label": "Visitor messages per conversation", "kind": "ratio", "unit": ""},
    "session_length": {"label": "Session length per conversation", "kind": "ratio", "unit": "s"},
    "lead_capture_rate": {"label": "Lead capture rate", "kind": "proportion", "unit": "%"},
}


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

    def stat(self, metric: str) -> stats.Stat:
        if metric == "messages_per_conversation":
            return stats.RatioStat(self.n, self.messages, self.messages_sq, self.conversations,
                                   self.conversations_sq, self.messages_x_conversations)
        if metric == "session_length":
            return stats.RatioStat(self.n, self.seconds, self.seconds_sq, self.conversations,
                                   self.conversations_sq, self.seconds_x_conversations)
        return stats.ProportionStat(self.n, self.converted)

    def value(self, metric: str) -> float | None:
        if metric == "lead_capture_rate":
            return self.converted / self.n if self.n else None
        denominator = self.conversations
        numerator = self.messages if metric == "messages_per_conversation" else self.seconds
        return numerator / denominator if denominator else None


@dataclass
class Results:
    experiment: Experiment
    variants: list[Variant]
    totals: dict[int, VariantTotals]
    srm_p_value: float | None
    daily: dict[str, Any] = field(default_factory=dict)

    @property
    def srm_warning(self) -> bool:
        return self.srm_p_value is not None and self.srm_p_value < stats.SRM_THRESHOLD

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def metric(self, variant: Variant, metric: str) -> dict[str, Any]:
        """value, lift, ci, p_value (None where it does not apply or data are too thin)."""
        totals = self.totals[variant.id]
        out = {"value": totals.value(metric), "lift": None, "ci": None, "p_value": None, "enough_data": None}
        if variant.id == self.control.id:
            return out
        comparison = stats.compare(self.totals[self.control.id].stat(metric), totals.stat(metric))
        out["enough_data"] = comparison is not None
        if comparison is not None:
            out.update(lift=comparison.lift, ci=[comparison.ci_low, comparison.ci_high], p_value=comparison.p_value)
        return out

    def ci_scale(self, metric: str) -> float:
        """Half-width of the lift axis the CI bars of a metric share (at least ±5%)."""
        bounds = [abs(x) for v in self.variants for x in (self.metric(v, metric)["ci"] or [])]
        return max([0.05] + bounds)

    def verdict(self, variant: Variant, metric: str) -> str:
        """A plain-language sentence for a variant × metric."""
        result = self.metric(variant, metric)
        label = METRICS[metric]["label"].lower()
        if result["lift"] is None:
            return "Not enough data yet."
        low, high = result["ci"]
        if result["p_value"] >= stats.ALPHA:
            return f"No detectable difference in {label} yet (95% CI {low:+.0%} to {high:+.0%})."
        direction = "raises" if result["lift"] > 0 else "lowers"
        return (f"{variant.name} {direction} {label} by {abs(result['lift']):.0%} "
                f"(95% CI {low:+.0%} to {high:+.0%}).")

    def as_dict(self) -> dict[str, Any]:
        """The JSON export (README: Results export)."""
        e = self.experiment
        return {
            "experiment": {"id": e.id, "name": e.name, "kind": e.kind, "status": e.status,
                           "started_at": _iso(e.started_at), "stopped_at": _iso(e.stopped_at)},
            "srm": {"p_value": self.srm_p_value, "warning": self.srm_warning},
            "variants": [{
                "id": v.id, "key": v.key, "name": v.name, "weight": v.weight, "is_control": v.position == 0,
                "visitors": self.totals[v.id].n,
                "conversations": int(self.totals[v.id].conversations),
                "visitor_messages": int(self.totals[v.id].messages),
                "leads": self.totals[v.id].leads,
                "converted_visitors": int(self.totals[v.id].converted),
                "metrics": {m: self.metric(v, m) for m in METRICS},
            } for v in self.variants],
        }

    def csv_rows(self) -> list[list[Any]]:
        """One row per variant × metric."""
        rows = [["experiment_id", "variant_key", "variant_name", "is_control", "visitors", "metric", "value",
                 "lift", "ci_low", "ci_high", "p_value"]]
        for v in self.variants:
            for m in METRICS:
                r = self.metric(v, m)
                ci = r["ci"] or [None, None]
                rows.append([self.experiment.id, v.key, v.name, v.position == 0, self.totals[v.id].n, m,
                             r["value"], r["lift"], ci[0], ci[1], r["p_value"]])
        return rows


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def session_seconds(dialect: str) -> sa.ColumnElement:
    """Seconds between a conversation's first and last message, on either engine."""
    if dialect == "postgresql":
        return sa.extract("epoch", Conversation.last_message_at - Conversation.started_at)
    # julianday() carries ~10 µs of float error: round to the millisecond.
    return sa.func.round(
        (sa.func.julianday(Conversation.last_message_at) - sa.func.julianday(Conversation.started_at)) * 86400.0, 3)


def per_variant_totals(experiment_id: int) -> dict[int, VariantTotals]:
    """One SQL statement: per visitor, then per variant sums, squares and products."""
    dialect = db.engine.dialect.name
    conversations = (
        sa.select(Conversation.visitor_id.label("visitor_id"),
                  sa.func.count().label("convs"),
                  sa.func.sum(session_seconds(dialect)).label("secs"))
        .where(Conversation.experiment_id == experiment_id)
        .group_by(Conversation.visitor_id)
        .subquery("per_visitor_conversations"))
    messages = (
        sa.select(Conversation.visitor_id.label("visitor_id"), sa.func.count().label("msgs"))
        .select_from(Message).join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.experiment_id == experiment_id, Message.role == "visitor")
        .group_by(Conversation.visitor_id)
        .subquery("per_visitor_messages"))
    leads = (
        sa.select(Conversation.visitor_id.label("visitor_id"), sa.func.count().label("leads"))
        .select_from(Lead).join(Conversation, Conversation.id == Lead.conversation_id)
        .where(Conversation.experiment_id == experiment_id)
        .group_by(Conversation.visitor_id)
        .subquery("per_visitor_leads"))
    c = sa.func.coalesce(conversations.c.convs, 0)
    m = sa.func.coalesce(messages.c.msgs, 0)
    s = sa.func.coalesce(conversations.c.secs, 0.0)
    lead_rows = sa.func.coalesce(leads.c.leads, 0)
    a = ExperimentAssignment
    query = (
        sa.select(a.variant_id, sa.func.count().label("n"),
                  sa.func.sum(c), sa.func.sum(c * c),
                  sa.func.sum(m), sa.func.sum(m * m), sa.func.sum(m * c),
                  sa.func.sum(s), sa.func.sum(s * s), sa.func.sum(s * c),
                  sa.func.sum(sa.case((lead_rows > 0, 1), else_=0)), sa.func.sum(lead_rows))
        .select_from(a)
        .outerjoin(conversations, conversations.c.visitor_id == a.visitor_id)
        .outerjoin(messages, messages.c.visitor_id == a.visitor_id)
        .outerjoin(leads, leads.c.visitor_id == a.visitor_id)
        .where(a.experiment_id == experiment_id)
        .group_by(a.variant_id))
    totals: dict[int, VariantTotals] = {}
    for row in db.session.execute(query):
        variant_id, n, *sums, lead_count = row
        totals[variant_id] = VariantTotals(int(n), *(float(x or 0) for x in sums), leads=int(lead_count or 0))
    return totals


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def daily_series(experiment_id: int, variants: list[Variant]) -> dict[str, Any]:
    """Per day and variant: cumulative visitors, and each metric over the conversations started that day.

    The daily lead rate is conversations with a lead / conversations started that day (a trend line;
    the headline lead capture rate is per visitor).
    """
    dialect = db.engine.dialect.name
    a = ExperimentAssignment
    visitors = db.session.execute(
        sa.select(a.variant_id, sa.func.date(a.assigned_at).label("day"), sa.func.count())
        .where(a.experiment_id == experiment_id).group_by(a.variant_id, "day")).all()
    msg_counts = (
        sa.select(sa.func.count()).where(Message.conversation_id == Conversation.id, Message.role == "visitor")
        .correlate(Conversation).scalar_subquery())
    has_lead = sa.exists().where(Lead.conversation_id == Conversation.id).correlate(Conversation)
    per_day = db.session.execute(
        sa.select(Conversation.variant_id, sa.func.date(Conversation.started_at).label("day"), sa.func.count(),
                  sa.func.sum(msg_counts), sa.func.sum(session_seconds(dialect)),
                  sa.func.sum(sa.case((has_lead, 1), else_=0)))
        .where(Conversation.experiment_id == experiment_id)
        .group_by(Conversation.variant_id, "day")).all()

    days = sorted({_day(r[1]) for r in visitors} | {_day(r[1]) for r in per_day})
    new_visitors: dict[tuple[int, str], int] = {(r[0], _day(r[1])): int(r[2]) for r in visitors}
    conv: dict[tuple[int, str], tuple] = {(r[0], _day(r[1])): r[2:] for r in per_day}
    series: dict[str, Any] = {"days": days, "variants": []}
    for v in variants:
        running, cumulative, mpc, secs, rate = 0, [], [], [], []
        for d in days:
            running += new_visitors.get((v.id, d), 0)
            cumulative.append(running)
            count, msgs, seconds, with_lead = conv.get((v.id, d), (0, 0, 0, 0))
            mpc.append(round(float(msgs or 0) / count, 4) if count else None)
            secs.append(round(float(seconds or 0) / count, 2) if count else None)
            rate.append(round(float(with_lead or 0) / count, 4) if count else None)
        series["variants"].append({"key": v.key, "name": v.name, "cumulative_visitors": cumulative,
                                   "messages_per_conversation": mpc, "session_length": secs,
                                   "lead_capture_rate": rate})
    return series


def experiment_for(actor_id: int, agent_id: int, experiment_id: int) -> Experiment:
    """The experiment of this agent, if the actor may view it (other agents' and workspaces' ids: 404)."""
    agent_for(actor_id, agent_id, "view")
    experiment = db.session.get(Experiment, experiment_id)
    if experiment is None or experiment.agent_id != agent_id:
        raise NotFound("No such experiment.")
    return experiment


def compute(experiment: Experiment, with_daily: bool = False) -> Results:
    """Results of an experiment: totals per variant, SRM, and optionally the daily series."""
    variants = list(experiment.variants)
    totals = per_variant_totals(experiment.id)
    for v in variants:
        totals.setdefault(v.id, VariantTotals())
    srm = stats.srm_p_value([totals[v.id].n for v in variants], [v.weight for v in variants])
    results = Results(experiment, variants, totals, srm)
    if with_daily:
        results.daily = daily_series(experiment.id, variants)
    return results


def results_for(actor_id: int, agent_id: int, experiment_id: int, with_daily: bool = False) -> Results:
    """Role-checked entry point for the page and the exports."""
    return compute(experiment_for(actor_id, agent_id, experiment_id), with_daily)
