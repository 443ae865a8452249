"""Experiment results (SPEC §7): aggregation in SQL, statistics from `stats`.

Per visitor of the experiment (an assignment row): conversations, visitor messages, session
seconds and whether a lead was captured; then per variant the n, sums, sums of squares and sums
of products the statistics need. Python sees one row per variant (and per variant × day for the
charts), never a message.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Conversation, Experiment, ExperimentAssignment, Variant
from webapp.services.experiments import outcomes, stats
from webapp.services.experiments.experiments import experiment_for

METRICS = {
    "messages_per_conversation": {"label": "Visitor messages per conversation", "kind": "ratio", "unit": ""},
    "session_length": {"label": "Session length per conversation", "kind": "ratio", "unit": "s"},
    "lead_capture_rate": {"label": "Lead capture rate", "kind": "proportion", "unit": "%"},
}
# Every metric is non-negative, so a relative change cannot fall below −100%; the normal approximation's lower
# bound can, and is shown clamped there (the exports keep the computed bound).
LOWEST_LIFT = -1.0
OUTCOME_FIELDS = ("result", "variant_key", "note", "recorded_at")  # CSV columns outcome_<field>


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
    _metrics: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    _shortfalls: dict[tuple[int, str], str] = field(default_factory=dict, repr=False)  # stats.shortfall codes

    @property
    def srm_warning(self) -> bool:
        """p < 0.001, unless some arm expects too few visitors for the χ² approximation (srm_too_few): there a
        couple of visitors in a 5 % arm give p < 0.001 far more often than 1 in 1,000 under a correct split."""
        return (self.srm_p_value is not None and self.srm_p_value < stats.SRM_THRESHOLD
                and not self.srm_too_few)

    @property
    def srm_too_few(self) -> bool:
        """Fewer than 5 visitors expected in some arm: too few for Pearson's χ² to tell a mismatch from chance."""
        total, weights = sum(t.n for t in self.totals.values()), [v.weight for v in self.variants]
        return any(total * w / sum(weights) < stats.SRM_MIN_EXPECTED for w in weights)

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def metric(self, variant: Variant, metric: str) -> dict[str, Any]:
        """value, lift, ci, p_value (None where it does not apply or data are too thin); computed once."""
        if (variant.id, metric) not in self._metrics:
            self._metrics[(variant.id, metric)] = self._compare(variant, metric)
        return self._metrics[(variant.id, metric)]

    def _compare(self, variant: Variant, metric: str) -> dict[str, Any]:
        totals = self.totals[variant.id]
        out = {"value": totals.value(metric), "lift": None, "ci": None, "p_value": None, "enough_data": None,
               "reason": None}
        if out["value"] is None:
            out["reason"] = f"{variant.name} has no {'visitors' if totals.n == 0 else 'conversations'} yet."
        if variant.id == self.control.id:
            return out
        control, stat = self.totals[self.control.id].stat(metric), totals.stat(metric)
        comparison = stats.compare(control, stat)
        out["enough_data"] = comparison is not None
        if comparison is not None:
            out.update(lift=comparison.lift, ci=[comparison.ci_low, comparison.ci_high], p_value=comparison.p_value)
        else:
            arm, code = stats.shortfall(control, stat) or ("variant", stats.NO_VARIATION)
            self._shortfalls[(variant.id, metric)] = code
            out["reason"] = self._reason(self.control if arm == "control" else variant, metric, code)
        return out

    def _reason(self, arm: Variant, metric: str, code: str) -> str:
        """Why a variant has no lift, CI or p-value, in words (stats.shortfall's code about `arm`)."""
        totals, label = self.totals[arm.id], METRICS[metric]["label"].lower()
        lead_rate = metric == "lead_capture_rate"
        if code == stats.FEW_UNITS:
            return (f"{arm.name} has {totals.n} visitor{'' if totals.n == 1 else 's'}; "
                    f"a comparison needs at least {stats.MIN_UNITS} in every arm.")
        if code == stats.NO_DENOMINATOR:
            return f"{arm.name} has no conversations yet."
        if code == stats.ZERO_BASELINE:
            what = "no visitor has left a lead" if lead_rate else f"the {label} is 0"
            return f"In {arm.name} {what}: a relative change from 0 is undefined."
        if lead_rate:
            everyone = totals.converted == totals.n
            return (f"{'Every' if everyone else 'No'} visitor of {arm.name} has left a lead "
                    f"({int(totals.converted):,} of {totals.n:,}): without variation there is nothing to test against.")
        return (f"Every visitor of {arm.name} has the same {label}: "
                "without variation there is nothing to test against.")

    def shown_ci(self, variant: Variant, metric: str) -> tuple[float, float] | None:
        """The confidence interval as the page shows it: the lower bound no lower than −100%."""
        ci = self.metric(variant, metric)["ci"]
        return (max(ci[0], LOWEST_LIFT), ci[1]) if ci else None

    def ci_scale(self, metric: str) -> float:
        """Half-width of the lift axis the CI bars of a metric share (at least ±5%)."""
        bounds = [abs(x) for v in self.variants for x in (self.shown_ci(v, metric) or ())]
        return max([0.05] + bounds)

    def no_comparison(self, variant: Variant, metric: str) -> str:
        """Why a variant has no lift on a metric, as the page says it: too few visitors or no conversations is "not
        enough data yet"; an arm of any size without variation (nobody left a lead) or a zero baseline is said as
        such, not as a lack of visitors."""
        result = self.metric(variant, metric)
        if self._shortfalls.get((variant.id, metric)) in (stats.FEW_UNITS, stats.NO_DENOMINATOR):
            return f"Not enough data yet: {result['reason']}"
        return result["reason"] or "Not enough data yet."

    def verdict(self, variant: Variant, metric: str) -> str:
        """A plain-language sentence for a variant × metric."""
        result = self.metric(variant, metric)
        label = METRICS[metric]["label"].lower()
        if result["lift"] is None:
            return self.no_comparison(variant, metric)
        low, high = self.shown_ci(variant, metric)
        ci = f"95% CI {signed_percent(low)} to {signed_percent(high)}"
        if result["p_value"] >= stats.ALPHA:
            return f"No detectable difference in {label} yet ({ci})."
        direction = "raises" if result["lift"] > 0 else "lowers"
        return f"{variant.name} {direction} {label} by {percent(abs(result['lift']))} ({ci})."

    def as_dict(self) -> dict[str, Any]:
        """The JSON export (README: Results export)."""
        e = self.experiment
        return {
            "experiment": {"id": e.id, "name": e.name, "kind": e.kind, "status": e.status,
                           "started_at": _iso(e.started_at), "stopped_at": _iso(e.stopped_at)},
            "srm": {"p_value": self.srm_p_value, "warning": self.srm_warning},
            "outcome": outcomes.as_json(e),
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
                 "lift", "ci_low", "ci_high", "p_value", "reason"]]
        for v in self.variants:
            for m in METRICS:
                r = self.metric(v, m)
                ci = r["ci"] or [None, None]
                rows.append([self.experiment.id, v.key, v.name, v.position == 0, self.totals[v.id].n, m,
                             r["value"], r["lift"], ci[0], ci[1], r["p_value"], r["reason"]])
        # The experiment's outcome (SPEC §10.7), the same on every row: the last columns.
        outcome = outcomes.as_json(self.experiment) or {}
        rows[0] += [f"outcome_{k}" for k in OUTCOME_FIELDS]
        for row in rows[1:]:
            row += [outcome.get(k) for k in OUTCOME_FIELDS]
        return rows


def percent(value: float, signed: bool = False, min_decimals: int = 0) -> str:
    """A relative change in percent with two significant digits (whole percent from 10% up, at most 4 decimals), so
    that a small but significant lift reads "0.40%", not "0%"; at least `min_decimals` decimals (the table's 1)."""
    points = value * 100
    decimals = 0 if points == 0 else min(4, max(0, 1 - math.floor(math.log10(abs(points)))))
    return f"{points:{'+' if signed else ''}.{max(decimals, min_decimals)}f}%"


def signed_percent(value: float, min_decimals: int = 0) -> str:
    return percent(value, signed=True, min_decimals=min_decimals)


def table_percent(value: float) -> str:
    """A lift or CI bound in the results table: one decimal ("+30.0%"), two significant digits below 1% ("+0.40%")."""
    return signed_percent(value, min_decimals=1)


def p_value_text(p_value: float) -> str:
    """A p-value to 4 decimals, with more where rounding would carry it across α: 0.049985 is "0.04998", not the
    "0.0500" that would contradict its "significant" verdict."""
    if p_value < 0.0001:
        return "< 0.0001"
    return _on_its_side(p_value, stats.ALPHA, (f"{p_value:.{decimals}f}" for decimals in range(4, 11)))


def srm_p_value_text(p_value: float, digits: int) -> str:
    """The SRM p-value to `digits` significant digits, with more where rounding would carry it across the warning
    threshold: the banner of p = 0.000999 says so, not "p = 0.001"."""
    return _on_its_side(p_value, stats.SRM_THRESHOLD,
                        (f"{p_value:.{more}g}" for more in range(digits, digits + 8)))


def _on_its_side(p_value: float, threshold: float, texts: Iterable[str]) -> str:
    """The first of `texts` (p_value rounded ever more finely) that reads on the same side of `threshold` as
    p_value does, else "< threshold"."""
    for text in texts:
        if (float(text) < threshold) == (p_value < threshold):
            return text
    return f"< {threshold}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def per_variant_totals(experiment_id: int) -> dict[int, VariantTotals]:
    """Per visitor, then per variant: n, sums, sums of squares and products, in one statement.

    Reads the conversations' counters (visitor messages, leads, session seconds) through the
    (experiment_id, variant_id, visitor_id) index, so the per-visitor grouping streams without a
    sort and messages are never scanned. n is the number of assignment rows (SPEC §7).
    """
    per_visitor = (
        sa.select(Conversation.variant_id.label("variant_id"), sa.func.count().label("c"),
                  sa.func.sum(Conversation.visitor_messages).label("m"),
                  sa.func.sum(Conversation.session_seconds).label("s"),
                  sa.func.sum(Conversation.lead_count).label("l"))
        .where(Conversation.experiment_id == experiment_id)
        .group_by(Conversation.variant_id, Conversation.visitor_id)
        .subquery("per_visitor"))
    c, m, s, lead_rows = per_visitor.c.c, per_visitor.c.m, per_visitor.c.s, per_visitor.c.l
    moments = db.session.execute(
        sa.select(per_visitor.c.variant_id,
                  sa.func.sum(c), sa.func.sum(c * c), sa.func.sum(m), sa.func.sum(m * m), sa.func.sum(m * c),
                  sa.func.sum(s), sa.func.sum(s * s), sa.func.sum(s * c),
                  sa.func.sum(sa.case((lead_rows > 0, 1), else_=0)), sa.func.sum(lead_rows))
        .group_by(per_visitor.c.variant_id))
    a = ExperimentAssignment
    visitors = dict(db.session.execute(
        sa.select(a.variant_id, sa.func.count()).where(a.experiment_id == experiment_id).group_by(a.variant_id)).all())
    totals = {variant_id: VariantTotals(int(n)) for variant_id, n in visitors.items()}
    for variant_id, *sums, lead_count in moments:
        totals[variant_id] = VariantTotals(int(visitors.get(variant_id, 0)), *(float(x or 0) for x in sums),
                                           leads=int(lead_count or 0))
    return totals


def compute(experiment: Experiment, with_daily: bool = False) -> Results:
    """Results of an experiment: totals per variant, SRM, and optionally the daily series."""
    variants = list(experiment.variants)
    totals = per_variant_totals(experiment.id)
    for v in variants:
        totals.setdefault(v.id, VariantTotals())
    srm = stats.srm_p_value([totals[v.id].n for v in variants], [v.weight for v in variants])
    results = Results(experiment, variants, totals, srm)
    if with_daily:
        from webapp.services.experiments import daily  # daily builds on this module's VariantTotals
        results.daily = daily.daily_series(experiment)
    return results


def outcome_lift(experiment: Experiment) -> dict[str, Any] | None:
    """The shipped arm of a recorded outcome on the primary metric: {metric, label, lift, ci, p_value, text}; None
    when the outcome ships no arm (or the arm is gone)."""
    variant = next((v for v in experiment.variants if v.key == experiment.outcome_variant_key), None)
    if variant is None or variant.position == 0:
        return None
    metric = outcomes.primary_metric(experiment)
    result = compute(experiment).metric(variant, metric)
    label = METRICS[metric]["label"].lower()
    text = (f"{table_percent(result['lift'])} {label}" if result["lift"] is not None
            else f"{label}: not enough data")
    return {"metric": metric, "label": label, "lift": result["lift"], "ci": result["ci"],
            "p_value": result["p_value"], "text": text}


def results_for(actor_id: int, agent_id: int, experiment_id: int, with_daily: bool = False) -> Results:
    """Role-checked entry point for the page and the exports."""
    return compute(experiment_for(actor_id, agent_id, experiment_id), with_daily)
