"""The results page's series by day (SPEC §7, §11), in three SQL statements per experiment (counters, feedback, goals).

Visitors are grouped by the UTC day they were assigned (their cohort). Each day's figure of a metric is the table's
own per-visitor metric over that day's cohort: the lead capture rate is the cohort's visitors with a lead / the
cohort's visitors; messages and session length per conversation are the cohort's Σ / Σ conversations. The same
per-(variant, day) sufficient statistics, summed up to each day, give the cumulative figures (the cumulative lift
chart). The current UTC day is still filling: the series names it (`partial_day`) and the charts mark it. Rules in
docs/results-page.md.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, utcnow
from webapp.services.experiments import analysis as analysis_settings, stats
from webapp.services.experiments.metrics import (METRICS, VariantTotals, feedback_per_visitor, feedback_sums,
                                                 goal_reachers, metric_meta, set_feedback)

MAX_CALENDAR_DAYS = 1000  # a longer span (history sent back to 2000) keeps only the days with data


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def calendar_days(days_with_data: list[str]) -> list[str]:
    """Every day from the first to the last with data ("YYYY-MM-DD"), so that a chart's x axis is time: a day
    without traffic is a point on it (visitors flat, metrics null), not a step that silently joins two days."""
    if len(days_with_data) < 2:
        return days_with_data
    first, last = date.fromisoformat(days_with_data[0]), date.fromisoformat(days_with_data[-1])
    span = (last - first).days + 1
    if span > MAX_CALENDAR_DAYS:
        return days_with_data
    return [(first + timedelta(days=i)).isoformat() for i in range(span)]


def cohort_totals(experiment_id: int) -> dict[tuple[int, str], VariantTotals]:
    """Per variant and assignment day ("YYYY-MM-DD", UTC): the sufficient statistics of that day's visitors.

    Per visitor first (their conversations' counters, as the results table reads them), joined to their assignment
    row for its day, then summed per (variant, day); visitors without a conversation count in n with zeros."""
    c = Conversation
    per_visitor = (
        sa.select(c.variant_id.label("variant_id"), c.visitor_id.label("visitor_id"), sa.func.count().label("c"),
                  sa.func.sum(c.visitor_messages).label("m"), sa.func.sum(c.session_seconds).label("s"),
                  sa.func.sum(c.lead_count).label("l"))
        .where(c.experiment_id == experiment_id)
        .group_by(c.variant_id, c.visitor_id)
        .subquery("per_visitor"))
    a = ExperimentAssignment
    day = sa.func.date(a.assigned_at).label("day")
    cv, m, s, lead_rows = per_visitor.c.c, per_visitor.c.m, per_visitor.c.s, per_visitor.c.l
    rows = db.session.execute(
        sa.select(a.variant_id, day, sa.func.count(),
                  sa.func.sum(cv), sa.func.sum(cv * cv), sa.func.sum(m), sa.func.sum(m * m), sa.func.sum(m * cv),
                  sa.func.sum(s), sa.func.sum(s * s), sa.func.sum(s * cv),
                  sa.func.sum(sa.case((lead_rows > 0, 1), else_=0)), sa.func.sum(lead_rows))
        .select_from(a)
        .outerjoin(per_visitor, sa.and_(per_visitor.c.variant_id == a.variant_id,
                                        per_visitor.c.visitor_id == a.visitor_id))
        .where(a.experiment_id == experiment_id)
        .group_by(a.variant_id, day)).all()
    totals = {(variant_id, _day(d)): VariantTotals(int(n), *(float(x or 0) for x in sums), leads=int(leads or 0))
              for variant_id, d, n, *sums, leads in rows}
    _add_cohort_feedback(experiment_id, totals)
    _add_cohort_goals(experiment_id, totals)
    return totals


def _assigned(per_visitor: sa.Subquery, experiment_id: int) -> sa.Select:
    """Per (variant, assignment day): a select from `per_visitor` joined to its visitors' assignment rows."""
    a = ExperimentAssignment
    return (sa.select(a.variant_id, sa.func.date(a.assigned_at))
            .select_from(a)
            .join(per_visitor, sa.and_(per_visitor.c.variant_id == a.variant_id,
                                       per_visitor.c.visitor_id == a.visitor_id))
            .where(a.experiment_id == experiment_id)
            .group_by(a.variant_id, sa.func.date(a.assigned_at)))


def _add_cohort_feedback(experiment_id: int, totals: dict[tuple[int, str], VariantTotals]) -> None:
    """positive_feedback_rate's sums per (variant, day), as the results sum them per variant."""
    per_visitor = feedback_per_visitor(experiment_id)
    for variant_id, d, *sums in db.session.execute(
            _assigned(per_visitor, experiment_id).add_columns(*feedback_sums(per_visitor))):
        set_feedback(totals.setdefault((variant_id, _day(d)), VariantTotals()), sums)


def _add_cohort_goals(experiment_id: int, totals: dict[tuple[int, str], VariantTotals]) -> None:
    """Per (variant, day) and event name: the cohort's visitors with at least one such event (SPEC §13)."""
    reachers = goal_reachers(experiment_id)
    query = _assigned(reachers, experiment_id).add_columns(reachers.c.name, sa.func.count()).group_by(reachers.c.name)
    for variant_id, d, name, visitors in db.session.execute(query):
        totals.setdefault((variant_id, _day(d)), VariantTotals()).goals[name] = int(visitors)


def _plus(a: Any, b: Any) -> Any:
    """A running sum of one VariantTotals field: numbers add, the goals' per-name counts add name by name."""
    if isinstance(a, dict):
        return {name: a.get(name, 0) + b.get(name, 0) for name in a.keys() | b.keys()}
    return a + b


def cumulate(totals: list[VariantTotals]) -> list[VariantTotals]:
    """Running sums of a variant's daily statistics: the statistics of everyone assigned up to each day."""
    running, out = VariantTotals(), []
    for day in totals:
        running = VariantTotals(**{name: _plus(getattr(running, name), getattr(day, name))
                                   for name in VariantTotals.__dataclass_fields__})
        out.append(running)
    return out


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def daily_series(experiment: Experiment, today: date | None = None, metric: str | None = None,
                 analysis: stats.Analysis | None = None) -> dict[str, Any]:
    """Per day and variant: new and cumulative visitors, each metric over that day's cohort of visitors, and the
    cumulative lift of `metric` (the primary metric) with its interval by `analysis` (the experiment's engine).

    `partial_day` is the last day when it is today (UTC): its cohort is still being assigned and converting."""
    variants = list(experiment.variants)
    totals = cohort_totals(experiment.id)
    days = calendar_days(sorted({d for _, d in totals}))
    today_text = (today or utcnow().date()).isoformat()
    series: dict[str, Any] = {"days": days, "partial_day": days[-1] if days and days[-1] == today_text else None,
                              "variants": []}
    running_of: dict[int, list[VariantTotals]] = {}
    for v in variants:
        by_day = [totals.get((v.id, d), VariantTotals()) for d in days]
        running_of[v.id] = cumulate(by_day)
        entry: dict[str, Any] = {"key": v.key, "name": v.name, "visitors": [t.n for t in by_day],
                                 "cumulative_visitors": [t.n for t in running_of[v.id]]}
        for name in METRICS:
            digits = 2 if name == "session_length" else 4
            entry[name] = [_rounded(t.value(name), digits) for t in by_day]
        series["variants"].append(entry)
    settings = analysis_settings.settings_of(experiment)
    series["cumulative_lift"] = cumulative_lift(variants, running_of, metric or settings.primary_metric,
                                                analysis or settings.analysis())
    return series


def cumulative_lift(variants: list, running_of: dict[int, list[VariantTotals]], metric: str,
                    analysis: stats.Analysis) -> dict[str, Any]:
    """Each treatment arm's relative lift on `metric` over everyone assigned up to each day, with its interval (the
    confidence interval, the sequence valid at every look, or the credible interval, by the engine); None on a day
    with too little data (SPEC §7). Drawn from −100% as the table shows them (docs/rules.md): a bound below it is
    clamped there."""
    control = running_of[variants[0].id] if variants else []
    arms = []
    for v in variants[1:]:
        lift, low, high = [], [], []
        for c, t in zip(control, running_of[v.id]):
            comparison = stats.compare(c.stat(metric), t.stat(metric), analysis=analysis)
            values = (None, None, None) if comparison is None else (
                round(stats.shown_lift(x), 6) for x in (comparison.lift, comparison.ci_low, comparison.ci_high))
            for out, value in zip((lift, low, high), values):
                out.append(value)
        arms.append({"key": v.key, "name": v.name, "lift": lift, "ci_low": low, "ci_high": high})
    return {"metric": metric, "label": metric_meta(metric)["label"], "engine": analysis.engine, "alpha": analysis.alpha,
            "has_data": any(x is not None for arm in arms for x in arm["lift"]), "variants": arms}
