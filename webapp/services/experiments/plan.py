"""The plan of an experiment (SPEC §10.4): how many visitors it needs on its primary metric, and how many days.

`make_plan` is pure: a baseline (mean and per-visitor variance of the primary metric), the settings, the arms'
weights, the visitors so far and the visitors a day give the plan. The database parts are the traffic
(`traffic`) and, in results.py, the baselines' aggregates; `choose_baseline` picks the first usable source.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Conversation, ExperimentAssignment
from webapp.services.experiments import power as power_math
from webapp.services.experiments import stats
from webapp.services.experiments.analysis import Settings

HISTORY_DAYS = 28  # the agent's visitors before the start: the baseline's second source, and the traffic's
TRAFFIC_DAYS = 7  # the experiment's own last full days: the traffic once it has run a full day
REACHABLE_DAYS = (14, 28)  # the MDE reachable with this many days of traffic

CONTROL, AGENT_HISTORY, TYPED = "control", "agent_history", "typed"


@dataclass(frozen=True)
class Baseline:
    mean: float
    variance: float
    source: str  # control | agent_history | typed

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "variance": self.variance, "source": self.source}


@dataclass(frozen=True)
class Traffic:
    visitors_per_day: float
    source: str  # "experiment": its last full days; "agent": the agent's new visitors of (at most) the last 28 days
    days: float  # how many days the rate is measured over (the agent's: a fraction when it is younger than 28 days)


@dataclass(frozen=True)
class Plan:
    metric: str
    engine: str
    mde: float
    power: float
    alpha: float
    baseline: Baseline | None
    visitors_per_arm: int | None
    visitors_needed: int | None
    visitors_now: int
    progress: float | None
    visitors_per_day: float | None
    traffic_source: str | None
    days_remaining: int | None
    mde_reachable: dict[int, float | None]  # days of traffic → the smallest MDE detectable with it (fixed formula)
    reason: str | None  # why there is no plan (or no figure of it)
    traffic_days: float | None = None  # the days visitors_per_day is measured over (shown, not exported)

    @property
    def reached(self) -> bool:
        """The experiment has its planned sample."""
        return self.visitors_needed is not None and self.visitors_now >= self.visitors_needed

    @property
    def visitors_remaining(self) -> int | None:
        return None if self.visitors_needed is None else max(0, self.visitors_needed - self.visitors_now)

    def as_dict(self) -> dict[str, Any]:
        """The export's `plan` object (SPEC §10.7); fractions for mde, power and progress."""
        return {"metric": self.metric, "engine": self.engine, "mde": self.mde, "power": self.power,
                "alpha": self.alpha, "baseline": self.baseline.as_dict() if self.baseline else None,
                "visitors_per_arm": self.visitors_per_arm, "visitors_needed": self.visitors_needed,
                "visitors_now": self.visitors_now, "progress": self.progress,
                "visitors_per_day": self.visitors_per_day, "traffic_source": self.traffic_source,
                "days_remaining": self.days_remaining,
                "mde_reachable": {f"{days}_days": mde for days, mde in self.mde_reachable.items()},
                "reason": self.reason}


def baseline_of(stat: stats.Stat | None, source: str) -> Baseline | None:
    """The mean and per-visitor variance of a stat (a proportion: p(1−p); a ratio: the delta-method variance), or
    None when it cannot serve as a baseline: fewer than MIN_UNITS visitors, no denominator, no variation, or a
    zero mean (a relative MDE of 0 is undefined)."""
    if stat is None or not stats.enough_data(stat) or not stat.mean > 0:
        return None
    return Baseline(float(stat.mean), float(stat.variance), source)


def typed_baseline(rate: float | None) -> Baseline | None:
    """A typed lead capture rate as a proportion's baseline."""
    if rate is None or not 0 < rate < 1:
        return None
    return Baseline(rate, rate * (1 - rate), TYPED)


def choose_baseline(metric: str, kind: str, control: stats.Stat | None,
                    history: Callable[[], stats.Stat | None], typed_rate: float | None) -> Baseline | None:
    """The control once usable; else the agent's history (asked only then: it is a query); else, for the lead
    capture rate, the typed rate."""
    baseline = baseline_of(control, CONTROL) or baseline_of(history(), AGENT_HISTORY)
    if baseline is None and metric == "lead_capture_rate" and kind == "proportion":
        baseline = typed_baseline(typed_rate)
    return baseline


def planning_engine(engine: str) -> str:
    """The power formula an engine plans with: `bayesian` plans as `fixed` (SPEC §10.4)."""
    return "sequential" if engine == "sequential" else "fixed"


def make_plan(settings: Settings, weights: list[int], baseline: Baseline | None, visitors_now: int,
              traffic: Traffic | None, no_baseline_reason: str = "") -> Plan:
    """The plan for `settings` on a baseline; without a baseline, a plan of nulls with the reason."""
    common = {"metric": settings.primary_metric, "engine": settings.engine, "mde": settings.mde,
              "power": settings.power, "alpha": settings.alpha, "visitors_now": visitors_now}
    per_day = traffic.visitors_per_day if traffic else None
    common["traffic_days"] = traffic.days if traffic else None
    if baseline is None:
        return Plan(**common, baseline=None, visitors_per_arm=None, visitors_needed=None, progress=None,
                    visitors_per_day=per_day, traffic_source=traffic.source if traffic else None,
                    days_remaining=None, mde_reachable={d: None for d in REACHABLE_DAYS},
                    reason=no_baseline_reason or "No baseline for the primary metric yet.")
    per_arm = power_math.visitors_per_arm(baseline.mean, baseline.variance, settings.mde, settings.power,
                                          alpha=settings.alpha, engine=planning_engine(settings.engine),
                                          sequential_tuning=settings.sequential_tuning)
    needed = power_math.visitors_needed(per_arm, weights) if per_arm is not None else None
    smallest_share = min(weights) / sum(weights)
    reachable = {}
    for days in REACHABLE_DAYS:
        per_arm_then = math.floor(per_day * days * smallest_share) if per_day else 0
        reachable[days] = (power_math.minimum_detectable_effect(baseline.mean, baseline.variance, per_arm_then,
                                                                settings.power, alpha=settings.alpha)
                           if per_arm_then >= 2 else None)
    reason = None
    days_remaining = None
    if needed is None:
        reason = (f"A lift of {settings.mde:.1%} cannot be detected with {settings.power:.0%} power at any sample "
                  "size this calculator plans for: raise the MDE.")
    elif visitors_now >= needed:
        days_remaining = 0
    elif per_day:
        days_remaining = math.ceil((needed - visitors_now) / per_day)
    else:
        reason = "No traffic yet: the days remaining appear once the agent has visitors."
    return Plan(**common, baseline=baseline, visitors_per_arm=per_arm, visitors_needed=needed,
                progress=(visitors_now / needed) if needed else None, visitors_per_day=per_day,
                traffic_source=traffic.source if traffic else None, days_remaining=days_remaining,
                mde_reachable=reachable, reason=reason)


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(timezone.utc).date(), time(), tzinfo=timezone.utc)


def full_days(started_at: datetime | None, end: datetime) -> tuple[datetime, int]:
    """The end (a UTC midnight) and the number, at most TRAFFIC_DAYS, of the whole UTC days between `started_at`
    (the experiment's first assignment) and `end`: the days its traffic is measured over (0: not a full day yet)."""
    last_midnight = _midnight(end)
    if started_at is None:
        return last_midnight, 0
    first_midnight = _midnight(started_at) + (timedelta(days=1) if started_at > _midnight(started_at) else timedelta())
    return last_midnight, max(0, min(TRAFFIC_DAYS, (last_midnight - first_midnight).days))


def traffic(experiment_id: int | None, agent_id: int, end: datetime, now: datetime) -> Traffic:
    """Visitors a day: those assigned to the experiment in its last full UTC days (at most 7, counted from its first
    assignment, so a resume keeps them, up to `end`), once it has a whole one; else the agent's distinct new visitors
    (first conversation) a day over its last 28 days, or over the days since its first conversation if it is younger
    (at least 1 day)."""
    if experiment_id is not None:
        a = ExperimentAssignment
        first = db.session.scalar(sa.select(sa.func.min(a.assigned_at)).where(a.experiment_id == experiment_id))
        until, days = full_days(first, end)
        if days:
            count = db.session.scalar(sa.select(sa.func.count()).select_from(a).where(
                a.experiment_id == experiment_id, a.assigned_at >= until - timedelta(days=days),
                a.assigned_at < until))
            return Traffic(count / days, "experiment", days)
    since = now - timedelta(days=HISTORY_DAYS)
    first_seen = (sa.select(Conversation.visitor_id)
                  .where(Conversation.agent_id == agent_id)
                  .group_by(Conversation.visitor_id)
                  .having(sa.and_(sa.func.min(Conversation.started_at) >= since,
                                  sa.func.min(Conversation.started_at) < now))
                  .subquery())
    new_visitors = db.session.scalar(sa.select(sa.func.count()).select_from(first_seen))
    days = agent_days(agent_id, now)
    return Traffic(new_visitors / days, "agent", days)


def agent_days(agent_id: int, now: datetime) -> float:
    """The days the agent's traffic is measured over: since its first conversation, from 1 to HISTORY_DAYS (28)."""
    first = db.session.scalar(sa.select(sa.func.min(Conversation.started_at)).where(
        Conversation.agent_id == agent_id, Conversation.started_at < now))
    if first is None:
        return float(HISTORY_DAYS)
    return min(float(HISTORY_DAYS), max(1.0, (now - first).total_seconds() / 86400))
