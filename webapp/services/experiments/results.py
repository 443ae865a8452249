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
from functools import cached_property
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import (Conversation, Experiment, ExperimentAssignment, GoalEvent, Lead, Message, Variant,
                           utcnow)
from webapp.services.experiments import analysis, daily, outcomes, plan as plans, review, stats
from webapp.services.experiments.experiments import experiment_for, typed_weight
from webapp.services.workspace.agents import agent_for
from webapp.services.experiments.metrics import (METRICS, VariantTotals, experiment_metrics, feedback_per_visitor,
                                                 feedback_sums, goal_name, metric_meta, metrics_with, set_feedback)
OUTCOME_FIELDS = ("result", "variant_key", "note", "recorded_at")  # CSV columns outcome_<field>


@dataclass(frozen=True)
class Decision:
    """What the results say about a treatment arm on the primary metric (SPEC §10.5): the first rule that applies.

    `call` is one of CALLS; `reason` a sentence; `muted` marks figures that must not be read as a result yet (a
    fixed-horizon test before its planned sample)."""

    call: str
    reason: str
    muted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"call": self.call, "reason": self.reason, "muted": self.muted}


CALLS = ("srm", "not_enough_data", "ship", "worse", "inconclusive", "keep_running")
CALL_LABELS = {"srm": "sample ratio mismatch", "not_enough_data": "not enough data", "ship": "ship it",
               "worse": "worse than the control", "inconclusive": "inconclusive", "keep_running": "keep running"}
# Bayesian calls (SPEC §10.5): ship at a chance to win ≥ 95 % with a risk of choosing the variant ≤ 0.25 % (of the
# relative lift); worse at a chance ≤ 5 %.
BAYES_SHIP_CHANCE, BAYES_SHIP_RISK, BAYES_WORSE_CHANCE = 0.95, 0.0025, 0.05


@dataclass
class Results:
    experiment: Experiment
    variants: list[Variant]
    totals: dict[int, VariantTotals]
    srm_p_value: float | None
    daily: dict[str, Any] = field(default_factory=dict)
    settings: analysis.Settings | None = None  # None: the experiment's own
    alternative: bool = False  # a one-off engine (?engine=), not the experiment's own settings
    plan: plans.Plan | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(METRICS))
    review_reviewers: int = 0  # distinct reviewers of the experiment's conversations, all arms
    _metrics: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    _shortfalls: dict[tuple[int, str], str] = field(default_factory=dict, repr=False)  # stats.shortfall codes
    _adjusted: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.settings is None:
            self.settings = analysis.settings_of(self.experiment)

    @property
    def muted(self) -> bool:
        """The primary metric's figures are not to be read yet: a fixed-horizon test before its planned sample."""
        return any(d.muted for d in self.decisions.values())

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

    @property
    def treatments(self) -> list[Variant]:
        return self.variants[1:]

    @property
    def primary_metric(self) -> str:
        return self.settings.primary_metric

    @property
    def goals(self) -> list[str]:
        """The experiment's goal metrics' event names (SPEC §13), in the order the results show them."""
        return [meta["goal"] for meta in self.metrics.values() if meta.get("goal")]

    @property
    def goal_metrics(self) -> list[str]:
        return [key for key, meta in self.metrics.items() if meta.get("goal")]

    @property
    def ordered_metrics(self) -> dict[str, dict[str, Any]]:
        """The metrics of the page's main tables: the primary one first, then the secondary ones; the blinded
        review has its own section (`section`). The exports carry every metric."""
        shown = {k: v for k, v in self.metrics.items() if v.get("section") is None}
        primary = {k: v for k, v in shown.items() if k == self.primary_metric}
        return {**primary, **{k: v for k, v in shown.items() if k != self.primary_metric}}

    def missing(self, variant: Variant, metric: str) -> str:
        """What an arm without a value lacks, in two or three words ("no visitors", "no feedback", …)."""
        totals = self.totals[variant.id]
        if metric == "review_good_rate":
            return "no reviews"
        if totals.n == 0:
            return "no visitors"
        return "no feedback" if metric == "positive_feedback_rate" else "no conversations"

    @property
    def engine(self) -> str:
        return self.settings.engine

    @property
    def alpha(self) -> float:
        return self.settings.alpha

    @property
    def corrected(self) -> bool:
        """Whether the primary metric's p-values are adjusted: a correction, three arms or more, not bayesian."""
        return (self.settings.correction != "none" and len(self.variants) >= 3
                and self.settings.engine != "bayesian")

    def metric(self, variant: Variant, metric: str) -> dict[str, Any]:
        """value, lift, ci, p_value, p_value_adjusted, chance_to_win, risk (None where they do not apply or data
        are too thin); computed once."""
        if metric == self.primary_metric and self.corrected and not self._adjusted:
            self._adjust_primary()
        if (variant.id, metric) not in self._metrics:
            self._metrics[(variant.id, metric)] = self._compare(variant, metric)
        return self._metrics[(variant.id, metric)]

    def _adjust_primary(self) -> None:
        """Adjust the primary metric's treatment p-values as one family (SPEC §10.3)."""
        self._adjusted = True
        rows = [self.metric(v, self.primary_metric) for v in self.treatments]
        adjusted = stats.adjust_p_values([r["p_value"] for r in rows], self.settings.correction)
        for row, p_value in zip(rows, adjusted):
            row["p_value_adjusted"] = p_value

    def _compare(self, variant: Variant, metric: str) -> dict[str, Any]:
        totals = self.totals[variant.id]
        out = {"value": totals.value(metric), "lift": None, "ci": None, "p_value": None, "p_value_adjusted": None,
               "chance_to_win": None, "risk": None, "enough_data": None, "reason": None}
        if out["value"] is None:
            out["reason"] = f"{variant.name} has {self.missing(variant, metric)} yet."
        if variant.id == self.control.id:
            return out
        control, stat = self.totals[self.control.id].stat(metric), totals.stat(metric)
        comparison = stats.compare(control, stat, alpha=self.alpha, analysis=self.settings.analysis())
        out["enough_data"] = comparison is not None
        if comparison is not None:
            out.update(lift=comparison.lift, ci=[comparison.ci_low, comparison.ci_high], p_value=comparison.p_value,
                       chance_to_win=comparison.chance_to_win,
                       risk=list(comparison.risk) if comparison.risk is not None else None)
        else:
            arm, code = stats.shortfall(control, stat) or ("variant", stats.NO_VARIATION)
            self._shortfalls[(variant.id, metric)] = code
            out["reason"] = self._reason(self.control if arm == "control" else variant, metric, code)
        return out

    def _reason(self, arm: Variant, metric: str, code: str) -> str:
        """Why a variant has no lift, CI or p-value, in words (stats.shortfall's code about `arm`)."""
        totals, label = self.totals[arm.id], self.metrics[metric]["label"].lower()
        goal = goal_name(metric)
        lead_rate = metric == "lead_capture_rate" or goal is not None
        reached = f"reached the goal “{goal}”" if goal else "left a lead"
        unit = self.metrics[metric].get("unit_name", "visitor")
        units = totals.stat(metric).n
        if code == stats.FEW_UNITS and units == 0 and metric == "review_good_rate":
            return f"{arm.name} has {self.missing(arm, metric)} yet."
        if code == stats.FEW_UNITS:
            return (f"{arm.name} has {units} {unit}{'' if units == 1 else 's'}; "
                    f"a comparison needs at least {stats.MIN_UNITS} in every arm.")
        if code == stats.NO_DENOMINATOR:
            return f"{arm.name} has {self.missing(arm, metric)} yet."
        if code == stats.ZERO_BASELINE:
            what = f"no visitor has {reached}" if lead_rate else f"the {label} is 0"
            return f"In {arm.name} {what}: a relative change from 0 is undefined."
        if lead_rate:
            everyone = totals.reached(metric) == totals.n
            return (f"{'Every' if everyone else 'No'} visitor of {arm.name} has {reached} "
                    f"({totals.reached(metric):,} of {totals.n:,}): without variation there is nothing to test against.")
        return (f"Every {unit} of {arm.name} has the same {label}: "
                "without variation there is nothing to test against.")

    def decisive_p_value(self, variant: Variant, metric: str) -> float | None:
        """The p-value a call uses: the adjusted one where the primary metric is corrected."""
        result = self.metric(variant, metric)
        return result["p_value_adjusted"] if result["p_value_adjusted"] is not None else result["p_value"]

    def significant(self, variant: Variant, metric: str) -> bool:
        """A clear difference on a metric: p (adjusted on the primary metric) < α; bayesian: a chance to win
        ≥ 95 % or ≤ 5 %."""
        result = self.metric(variant, metric)
        if result["lift"] is None:
            return False
        if self.engine == "bayesian":
            return not BAYES_WORSE_CHANCE < result["chance_to_win"] < BAYES_SHIP_CHANCE
        return self.decisive_p_value(variant, metric) < self.alpha

    def shown_ci(self, variant: Variant, metric: str) -> tuple[float, float] | None:
        """The confidence interval as the page shows it: the lower bound no lower than −100%."""
        ci = self.metric(variant, metric)["ci"]
        return (stats.shown_lift(ci[0]), ci[1]) if ci else None

    def ci_scale(self, metric: str) -> float:
        """Half-width of the lift axis the CI bars of a metric share (at least ±5%)."""
        bounds = [abs(x) for v in self.variants for x in (self.shown_ci(v, metric) or ())]
        return max([0.05] + bounds)

    @property
    def interval_label(self) -> str:
        """"95% CI", or "95% credible interval" for bayesian; the level is 1 − α."""
        level = f"{(1 - self.alpha) * 100:.0f}%"
        return f"{level} credible interval" if self.engine == "bayesian" else f"{level} CI"

    def no_comparison(self, variant: Variant, metric: str) -> str:
        """Why a variant has no lift on a metric, as the page says it: too few visitors or no conversations is "not
        enough data yet"; an arm of any size without variation (nobody left a lead) or a zero baseline is said as
        such, not as a lack of visitors."""
        result = self.metric(variant, metric)
        if self._shortfalls.get((variant.id, metric)) in (stats.FEW_UNITS, stats.NO_DENOMINATOR):
            return f"Not enough data yet: {result['reason']}"
        return result["reason"] or "Not enough data yet."

    def _interval(self, variant: Variant, metric: str) -> str:
        low, high = self.shown_ci(variant, metric)
        return f"{self.interval_label} {signed_percent(low)} to {signed_percent(high)}"

    def verdict(self, variant: Variant, metric: str) -> str:
        """A plain-language sentence for a variant × metric."""
        result = self.metric(variant, metric)
        label = self.metrics[metric]["label"].lower()
        if result["lift"] is None:
            return self.no_comparison(variant, metric)
        ci = self._interval(variant, metric)
        if not self.significant(variant, metric):
            return f"No detectable difference in {label} yet ({ci})."
        direction = "raises" if result["lift"] > 0 else "lowers"
        return f"{variant.name} {direction} {label} by {percent(abs(result['lift']))} ({ci})."

    # --- the decision (SPEC §10.5) -------------------------------------------------------------------------

    def decision(self, variant: Variant) -> Decision:
        """The call on a treatment arm, on the primary metric: the first rule of SPEC §10.5 that applies."""
        metric = self.primary_metric
        result = self.metric(variant, metric)
        if self.srm_warning:
            return Decision("srm", "Don't trust these results: visitors per variant differ from the configured "
                                   f"weights more than chance allows (χ² p = {srm_p_value_text(self.srm_p_value, 2)});"
                                   " assignment or tracking may be broken.")
        if result["lift"] is None:
            return Decision("not_enough_data", self.no_comparison(variant, metric))
        if self.engine == "bayesian":
            return self._bayesian_decision(variant, result)
        label, control = self.metrics[metric]["label"].lower(), self.control.name
        lift = signed_percent(result["lift"])
        p_value = self.decisive_p_value(variant, metric)
        shown = p_value_text(p_value, self.alpha)
        p_text = (f"{'adjusted ' if result['p_value_adjusted'] is not None else ''}p"
                  f"{' ' if shown.startswith('<') else ' = '}{shown}")
        figures = f"{lift} ({self._interval(variant, metric)}, {p_text})"
        plan = self.plan
        if self.engine == "fixed" and not (plan and plan.reached):
            return Decision("keep_running", "Keep running: a fixed-horizon test read before its planned sample "
                                            f"overstates wins; {self._to_go()}.", muted=True)
        if p_value < self.alpha:
            look = ("valid at every look: you can stop now" if self.engine == "sequential"
                    else "at the planned sample: you can stop now")
            if result["lift"] > 0:
                return Decision("ship", f"{variant.name} beats {control} on {label}: {figures}, {look}"
                                        f"{self._and_promote(variant)}.")
            return Decision("worse", f"{variant.name} does worse than {control} on {label}: {figures}, {look}.")
        if plan and plan.reached:
            return Decision("inconclusive", f"The planned sample is reached and no lift of ±{percent(plan.mde)} or "
                                            f"more was found on {label}: {figures}.")
        return Decision("keep_running", f"No clear difference on {label} yet ({figures}); {self._to_go()}.")

    def _bayesian_decision(self, variant: Variant, result: dict[str, Any]) -> Decision:
        label, control = self.metrics[self.primary_metric]["label"].lower(), self.control.name
        chance, risk = result["chance_to_win"], result["risk"][1]
        figures = (f"{signed_percent(result['lift'])} ({self._interval(variant, self.primary_metric)}), chance to win "
                   f"{chance_text(chance)}, risk of choosing it {risk_text(risk)}")
        if chance >= BAYES_SHIP_CHANCE and risk <= BAYES_SHIP_RISK:
            return Decision("ship", f"{variant.name} beats {control} on {label}: {figures}: you can stop now"
                                    f"{self._and_promote(variant)}.")
        if chance <= BAYES_WORSE_CHANCE:
            return Decision("worse", f"{variant.name} does worse than {control} on {label}: {figures}.")
        return Decision("keep_running", f"Not decisive on {label} yet ({figures}; ship needs a chance to win of 95% "
                                        f"or more with a risk of 0.25% or less); {self._to_go()}.")

    def _and_promote(self, variant: Variant) -> str:
        """A persona arm that wins can be promoted in the same step (SPEC §3): the sentence says so."""
        return f" and promote {variant.name}" if self.experiment.kind == "persona" else ""

    def _to_go(self) -> str:
        """How far the plan is: "about D more days (V more visitors) to the planned sample"."""
        plan = self.plan
        if plan is None or plan.visitors_needed is None:
            return f"no planned sample: {plan.reason if plan else 'no plan'}"
        remaining = plan.visitors_remaining
        if remaining == 0:
            return "the planned sample is reached"
        visitors = f"{remaining:,} more visitor{'' if remaining == 1 else 's'}"
        if plan.days_remaining is None:
            return f"{visitors} to the planned sample (no traffic yet to say how many days)"
        days = plan.days_remaining
        return f"about {days:,} more day{'' if days == 1 else 's'} ({visitors}) to the planned sample"

    @cached_property
    def decisions(self) -> dict[int, Decision]:
        """The call per treatment arm, by variant id (once the plan is set)."""
        return {v.id: self.decision(v) for v in self.treatments}

    # --- exports -------------------------------------------------------------------------------------------

    def analysis_dict(self) -> dict[str, Any]:
        """The export's `analysis` object (SPEC §10.7)."""
        s = self.settings
        return {"engine": s.engine, "alpha": s.alpha, "sequential_tuning": s.sequential_tuning, "prior": s.prior,
                "correction": s.correction, "primary_metric": s.primary_metric, "mde": s.mde, "power": s.power,
                "baseline_rate": s.baseline_rate, "alternative": self.alternative}

    def as_dict(self) -> dict[str, Any]:
        """The JSON export (docs/analysis.md: Exports)."""
        e = self.experiment
        decisions = self.decisions
        return {
            "experiment": {"id": e.id, "name": e.name, "kind": e.kind, "status": e.status,
                           "started_at": _iso(e.started_at), "stopped_at": _iso(e.stopped_at)},
            "analysis": self.analysis_dict(),
            "plan": self.plan.as_dict() if self.plan else None,
            "srm": {"p_value": self.srm_p_value, "warning": self.srm_warning},
            "goals": self.goals,
            "review": {"reviews": sum(t.reviews for t in self.totals.values()), "reviewers": self.review_reviewers},
            "outcome": outcomes.as_json(e),
            "variants": [{
                "id": v.id, "key": v.key, "name": v.name, "weight": v.weight, "is_control": v.position == 0,
                "visitors": self.totals[v.id].n,
                "conversations": int(self.totals[v.id].conversations),
                "visitor_messages": int(self.totals[v.id].messages),
                "leads": self.totals[v.id].leads,
                "converted_visitors": int(self.totals[v.id].converted),
                "goal_visitors": {name: self.totals[v.id].goals.get(name, 0) for name in self.goals},
                "conversations_rated": int(self.totals[v.id].feedback_rated),
                "conversations_rated_up": int(self.totals[v.id].feedback_up),
                "reviews": self.totals[v.id].reviews, "reviews_good": self.totals[v.id].reviews_good,
                "reviewers": self.totals[v.id].reviewers,
                "metrics": {m: self.metric(v, m) for m in self.metrics},
                "decision": decisions[v.id].as_dict() if v.id in decisions else None,
            } for v in self.variants],
        }

    CSV_HEADER = ["experiment_id", "variant_key", "variant_name", "is_control", "visitors", "metric", "value",
                  "lift", "ci_low", "ci_high", "p_value", "reason", "engine", "alpha", "alternative", "is_primary",
                  "p_value_adjusted", "chance_to_win", "risk_control", "risk_variant", "decision", "decision_reason",
                  "unit", "units", "numerator", "denominator", "reviewers"]

    def csv_rows(self) -> list[list[Any]]:
        """One row per variant × metric; the decision on the primary metric's rows of the treatment arms. `visitors`
        is the arm's visitors on every row; `unit` and `units` say what the metric's statistics count (visitors, or
        reviews for the blinded review) and how many, `numerator` / `denominator` the counts of its value, and
        `reviewers` the arm's distinct reviewers on the blinded review's rows (empty elsewhere)."""
        rows = [list(self.CSV_HEADER)]
        decisions = self.decisions
        for v in self.variants:
            totals = self.totals[v.id]
            for m in self.metrics:
                r = self.metric(v, m)
                ci, risk = r["ci"] or [None, None], r["risk"] or [None, None]
                decision = decisions.get(v.id) if m == self.primary_metric else None
                unit = self.metrics[m].get("unit_name", "visitor")
                rows.append([self.experiment.id, v.key, v.name, v.position == 0, totals.n, m,
                             r["value"], r["lift"], ci[0], ci[1], r["p_value"], r["reason"], self.engine, self.alpha,
                             self.alternative, m == self.primary_metric, r["p_value_adjusted"], r["chance_to_win"],
                             risk[0], risk[1], decision.call if decision else None,
                             decision.reason if decision else None,
                             unit, totals.stat(m).n, *totals.counts(m), totals.reviewers if unit == "review" else None])
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


def p_value_text(p_value: float, alpha: float = stats.ALPHA) -> str:
    """A p-value to 4 decimals, with more where rounding would carry it across α: 0.049985 is "0.04998", not the
    "0.0500" that would contradict its "significant" verdict."""
    if p_value < 0.0001:
        return "< 0.0001"
    return _on_its_side(p_value, alpha, (f"{p_value:.{decimals}f}" for decimals in range(4, 11)))


def chance_text(chance: float) -> str:
    """A chance to win in whole percent, never 0% or 100% (a normal posterior is never certain)."""
    if chance > 0.995:
        return "> 99%"
    if chance < 0.005:
        return "< 1%"
    return f"{chance * 100:.0f}%"


def risk_text(risk: float) -> str:
    """A risk (expected loss, relative) in percent, to two decimals ("0.13%")."""
    return "< 0.01%" if risk < 0.00005 else f"{risk * 100:.2f}%"


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
    moments = db.session.execute(sa.select(per_visitor.c.variant_id, *_moments(per_visitor))
                                 .group_by(per_visitor.c.variant_id))
    a = ExperimentAssignment
    visitors = dict(db.session.execute(
        sa.select(a.variant_id, sa.func.count()).where(a.experiment_id == experiment_id).group_by(a.variant_id)).all())
    totals = {variant_id: VariantTotals(int(n)) for variant_id, n in visitors.items()}
    for variant_id, *sums, lead_count in moments:
        totals[variant_id] = VariantTotals(int(visitors.get(variant_id, 0)), *(float(x or 0) for x in sums),
                                           leads=int(lead_count or 0))
    for variant_id, goals in goal_visitors(experiment_id).items():
        if variant_id in totals:
            totals[variant_id].goals = goals
    _add_feedback(experiment_id, totals)
    return totals


def _add_feedback(experiment_id: int, totals: dict[int, VariantTotals]) -> None:
    """positive_feedback_rate's sums per variant, from the feedback rows' own stamp. A visitor without feedback adds
    0 to every sum but counts in n (every assigned visitor is a unit)."""
    per_visitor = feedback_per_visitor(experiment_id)
    for variant_id, *sums in db.session.execute(
            sa.select(per_visitor.c.variant_id, *feedback_sums(per_visitor)).group_by(per_visitor.c.variant_id)):
        set_feedback(totals.setdefault(variant_id, VariantTotals()), sums)


def goal_visitors(experiment_id: int) -> dict[int, dict[str, int]]:
    """Per variant and event name: the visitors with at least one such event in a stamped conversation, counted in
    SQL over the (experiment_id, name, variant_id, visitor_id) index."""
    rows = db.session.execute(
        sa.select(GoalEvent.variant_id, GoalEvent.name, sa.func.count(sa.distinct(GoalEvent.visitor_id)))
        .where(GoalEvent.experiment_id == experiment_id, GoalEvent.variant_id.is_not(None))
        .group_by(GoalEvent.name, GoalEvent.variant_id))
    counts: dict[int, dict[str, int]] = {}
    for variant_id, name, visitors in rows:
        counts.setdefault(variant_id, {})[name] = int(visitors)
    return counts


def _moments(per_visitor: sa.Subquery) -> list[Any]:
    """Over a per-visitor subquery (c conversations, m visitor messages, s session seconds, l lead rows): the sums,
    sums of squares and products VariantTotals takes, in its field order, then the lead rows."""
    c, m, s, lead_rows = per_visitor.c.c, per_visitor.c.m, per_visitor.c.s, per_visitor.c.l
    return [sa.func.sum(c), sa.func.sum(c * c), sa.func.sum(m), sa.func.sum(m * m), sa.func.sum(m * c),
            sa.func.sum(s), sa.func.sum(s * s), sa.func.sum(s * c),
            sa.func.sum(sa.case((lead_rows > 0, 1), else_=0)), sa.func.sum(lead_rows)]


def agent_history_totals(agent_id: int, since: datetime, until: datetime, goal: str | None = None) -> VariantTotals:
    """The agent's visitors with a conversation started in [since, until), aggregated per visitor as SPEC §7 does
    over all those conversations, stamped or not (the plan's `agent_history` baseline); with `goal`, also how many
    of them reached that goal in one of those conversations (a `goal:<name>` metric's baseline).

    The conversations' counters count stamped activity only, so visitor messages and leads are counted from their
    tables here, per conversation, in SQL."""
    visitor_messages = (sa.select(sa.func.count()).where(Message.conversation_id == Conversation.id,
                                                         Message.role == "visitor")
                        .correlate(Conversation).scalar_subquery())
    leads = (sa.select(sa.func.count()).where(Lead.conversation_id == Conversation.id)
             .correlate(Conversation).scalar_subquery())
    per_conversation = (
        sa.select(Conversation.visitor_id.label("visitor_id"), visitor_messages.label("m"),
                  Conversation.session_seconds.label("s"), leads.label("l"))
        .where(Conversation.agent_id == agent_id, Conversation.started_at >= since, Conversation.started_at < until)
        .subquery("per_conversation"))
    per_visitor = (
        sa.select(sa.func.count().label("c"), sa.func.sum(per_conversation.c.m).label("m"),
                  sa.func.sum(per_conversation.c.s).label("s"), sa.func.sum(per_conversation.c.l).label("l"))
        .group_by(per_conversation.c.visitor_id)
        .subquery("per_visitor"))
    n, *sums, lead_count = db.session.execute(
        sa.select(sa.func.count(), *_moments(per_visitor)).select_from(per_visitor)).one()
    totals = VariantTotals(int(n or 0), *(float(x or 0) for x in sums), leads=int(lead_count or 0))
    if goal:
        totals.goals[goal] = int(db.session.scalar(
            sa.select(sa.func.count(sa.distinct(GoalEvent.visitor_id)))
            .join(Conversation, Conversation.id == GoalEvent.conversation_id)
            .where(GoalEvent.agent_id == agent_id, GoalEvent.name == goal, Conversation.started_at >= since,
                   Conversation.started_at < until)) or 0)
    return totals


def compute(experiment: Experiment, with_daily: bool = False, engine: str | None = None,
            now: datetime | None = None) -> Results:
    """Results of an experiment with its analysis settings (`engine`: a one-off other engine): totals per
    variant, SRM, the plan, the comparisons and decisions, and optionally the daily series."""
    variants = list(experiment.variants)
    totals = per_variant_totals(experiment.id)
    for v in variants:
        totals.setdefault(v.id, VariantTotals())
    srm = stats.srm_p_value([totals[v.id].n for v in variants], [v.weight for v in variants])
    per_arm, reviewers = review.review_counts(experiment.id)
    for variant_id, (reviews, good, arm_reviewers) in per_arm.items():
        t = totals.setdefault(variant_id, VariantTotals())
        t.reviews, t.reviews_good, t.reviewers = reviews, good, arm_reviewers
    saved = analysis.settings_of(experiment)
    settings = saved.with_engine(engine)
    metrics = experiment_metrics(experiment)
    results = Results(experiment, variants, totals, srm, settings=settings,
                      alternative=engine is not None and engine != saved.engine, metrics=metrics,
                      review_reviewers=reviewers)
    control = totals[variants[0].id] if variants else VariantTotals()
    results.plan = experiment_plan(experiment, settings, [v.weight for v in variants], control,
                                   sum(t.n for t in totals.values()), now or utcnow())
    if with_daily:
        results.daily = daily.daily_series(experiment, metric=settings.primary_metric, analysis=settings.analysis())
    return results


def outcome_lift(experiment: Experiment) -> dict[str, Any] | None:
    """The shipped arm of a recorded outcome on the primary metric: {metric, label, lift, ci, p_value, text}; None
    when the outcome ships no arm (or the arm is gone)."""
    variant = next((v for v in experiment.variants if v.key == experiment.outcome_variant_key), None)
    if variant is None or variant.position == 0:
        return None
    metric = outcomes.primary_metric(experiment)
    result = compute(experiment).metric(variant, metric)
    label = metric_meta(metric)["label"].lower()
    text = (f"{table_percent(result['lift'])} {label}" if result["lift"] is not None
            else f"{label}: not enough data")
    return {"metric": metric, "label": label, "lift": result["lift"], "ci": result["ci"],
            "p_value": result["p_value"], "text": text}


def experiment_plan(experiment: Experiment | None, settings: analysis.Settings, weights: list[int],
                    control: VariantTotals | None, visitors_now: int, now: datetime, agent_id: int | None = None
                    ) -> plans.Plan:
    """The plan of an experiment (None: a new one of `agent_id`) under `settings` (SPEC §10.4)."""
    agent_id = experiment.agent_id if experiment is not None else agent_id
    metric = settings.primary_metric
    meta = metrics_with(experiment, metric)[metric]
    started = experiment.started_at if experiment is not None and experiment.started_at else None
    history_until = started or now
    history_since = history_until - timedelta(days=plans.HISTORY_DAYS)

    def history() -> stats.Stat:
        return agent_history_totals(agent_id, history_since, history_until, goal_name(metric)).stat(metric)

    baseline = plans.choose_baseline(metric, meta["kind"], control.stat(metric) if control else None, history,
                                     settings.baseline_rate)
    end = experiment.stopped_at if experiment is not None and experiment.status == "stopped" else now
    traffic = plans.traffic(experiment.id if experiment is not None else None, agent_id, end or now, now)
    reason = ""
    if baseline is None:
        typed = (" and no baseline rate is typed in the analysis settings" if metric == "lead_capture_rate"
                 else " (a typed baseline rate serves the lead capture rate only)")
        reason = (f"No baseline for the {meta['label'].lower()} yet: the control "
                  f"needs {stats.MIN_UNITS} visitors with some variation, the agent had too few such visitors in the "
                  f"{plans.HISTORY_DAYS} days before {'the start' if started else 'now'}{typed}.")
    return plans.make_plan(settings, weights, baseline, visitors_now, traffic, reason)


def plan_preview(actor_id: int, agent_id: int, experiment_id: int | None, data: dict[str, Any],
                 now: datetime | None = None) -> tuple[Experiment | None, plans.Plan | None, dict[str, str]]:
    """The plan a new or edited experiment would have with the settings and weights of a form being typed (the
    live calculator), saving nothing: (the experiment or None, the plan, {}), or with the analysis settings' field
    errors instead of a plan."""
    if experiment_id is None:
        agent_for(actor_id, agent_id, "manage_experiments")
        experiment, current = None, analysis.DEFAULTS
    else:
        experiment = experiment_for(actor_id, agent_id, experiment_id, "manage_experiments")
        current = analysis.settings_of(experiment)
    errors: dict[str, str] = {}
    settings = analysis.validate(data, current, experiment, errors, agent_id)
    if errors:
        return experiment, None, errors
    weights = [v.weight for v in experiment.variants] if experiment is not None else []
    if (experiment is None or experiment.status == "draft") and isinstance(data.get("variants"), list):
        typed = [typed_weight(str(row.get("weight", ""))) for row in data["variants"] if isinstance(row, dict)]
        if len(typed) >= 2 and all(typed):  # an invalid weight keeps the saved split (its field says why)
            weights = typed
    weights = weights or [1, 1]
    totals = per_variant_totals(experiment.id) if experiment is not None and experiment.status != "draft" else {}
    control = totals.get(experiment.variants[0].id) if experiment is not None and experiment.variants else None
    return experiment, experiment_plan(experiment, settings, weights, control, sum(t.n for t in totals.values()),
                                       now or utcnow(), agent_id), {}


def results_for(actor_id: int, agent_id: int, experiment_id: int, with_daily: bool = False,
                engine: str | None = None) -> Results:
    """Role-checked entry point for the page and the exports; `engine` is a query string's one-off engine
    (BadRequest naming a bad one)."""
    engine = analysis.parse_engine(engine)
    return compute(experiment_for(actor_id, agent_id, experiment_id), with_daily, engine)
