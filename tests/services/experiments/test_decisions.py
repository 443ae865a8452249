"""The decision (SPEC §10.5): one test per rule and engine, on sufficient statistics (no database)."""
from __future__ import annotations

import pytest

from webapp.models import Experiment, Variant
from webapp.services.experiments import analysis, plan as plans, stats
from webapp.services.experiments.results import Results, VariantTotals


def results(engine: str, arms: list[tuple[int, int]], reached: bool | None = True, correction: str = "none",
            mde: float = 0.1, days: int | None = 3, srm: float | None = 0.5) -> Results:
    """Results of a lead capture rate with arms of (visitors, converted); a plan reached, not reached or absent."""
    experiment = Experiment(id=1, agent_id=1, name="E", kind="cta", status="running")
    variants = [Variant(id=10 + i, key=key, name=name, weight=1, position=i, config={})
                for i, (key, name) in enumerate(zip(["control", "aria", "bob"], ["Sam", "Aria", "Bob"]))][:len(arms)]
    totals = {v.id: VariantTotals(n, converted=c) for v, (n, c) in zip(variants, arms)}
    settings = analysis.Settings(engine=engine, correction=correction, mde=mde)
    visitors = sum(n for n, _ in arms)
    plan = None
    if reached is not None:
        needed = visitors if reached else visitors + 600
        plan = plans.Plan(metric="lead_capture_rate", engine=engine, mde=mde, power=0.8, alpha=0.05,
                          baseline=plans.Baseline(0.1, 0.09, "control"), visitors_per_arm=needed // 2,
                          visitors_needed=needed, visitors_now=visitors, progress=visitors / needed,
                          visitors_per_day=200, traffic_source="experiment",
                          days_remaining=0 if reached else days, mde_reachable={14: 0.2, 28: 0.15}, reason=None)
    return Results(experiment, variants, totals, srm, settings=settings, plan=plan)


def call(r: Results, arm: int = 1):
    return r.decision(r.variants[arm])


BIG_WIN, BIG_LOSS, NOTHING = [(2000, 200), (2000, 320)], [(2000, 320), (2000, 200)], [(2000, 200), (2000, 202)]


@pytest.mark.parametrize("engine", analysis.ENGINES)
def test_srm_comes_first(engine):
    decision = call(results(engine, BIG_WIN, srm=1e-6))
    assert decision.call == "srm" and decision.reason.startswith("Don't trust these results:")


@pytest.mark.parametrize("engine", analysis.ENGINES)
def test_too_little_data_is_not_enough_data_with_the_reason(engine):
    decision = call(results(engine, [(20, 2), (2000, 300)]))
    assert decision.call == "not_enough_data" and "Sam has 20 visitors" in decision.reason


def test_sequential_significant_win_ships_at_any_look():
    decision = call(results("sequential", BIG_WIN, reached=False))
    assert decision.call == "ship" and "valid at every look: you can stop now" in decision.reason
    assert decision.reason.startswith("Aria beats Sam on lead capture rate: +60%")


def test_sequential_significant_loss_is_worse():
    decision = call(results("sequential", BIG_LOSS, reached=False))
    assert decision.call == "worse" and "valid at every look" in decision.reason


def test_sequential_at_the_plan_without_a_difference_is_inconclusive():
    decision = call(results("sequential", NOTHING, reached=True, mde=0.1))
    assert decision.call == "inconclusive" and "no lift of ±10% or more" in decision.reason


def test_sequential_before_the_plan_keeps_running_with_the_days_to_go():
    decision = call(results("sequential", NOTHING, reached=False, days=3))
    assert decision.call == "keep_running" and not decision.muted
    assert "about 3 more days (600 more visitors) to the planned sample" in decision.reason


def test_fixed_before_the_plan_keeps_running_with_the_figures_muted_even_when_significant():
    decision = call(results("fixed", BIG_WIN, reached=False))
    assert decision.call == "keep_running" and decision.muted
    assert "a fixed-horizon test read before its planned sample overstates wins" in decision.reason


def test_fixed_without_a_plan_keeps_running():
    decision = call(results("fixed", BIG_WIN, reached=None))
    assert decision.call == "keep_running" and decision.muted


@pytest.mark.parametrize("arms, expected", [(BIG_WIN, "ship"), (BIG_LOSS, "worse"), (NOTHING, "inconclusive")])
def test_fixed_at_the_plan_calls_by_p_below_alpha(arms, expected):
    decision = call(results("fixed", arms, reached=True))
    assert decision.call == expected and not decision.muted


def test_bayesian_ships_at_95_percent_chance_and_low_risk():
    r = results("bayesian", BIG_WIN, reached=False)
    decision = call(r)
    assert decision.call == "ship" and "chance to win > 99%" in decision.reason
    assert r.metric(r.variants[1], "lead_capture_rate")["p_value"] is None


def test_bayesian_calls_worse_at_5_percent_chance():
    assert call(results("bayesian", BIG_LOSS)).call == "worse"


def test_bayesian_keeps_running_in_between_with_the_plans_days():
    decision = call(results("bayesian", NOTHING, reached=False, days=3))
    assert decision.call == "keep_running" and "about 3 more days" in decision.reason


def test_bayesian_needs_the_risk_low_as_well_as_the_chance_high():
    """A chance to win ≥ 95 % with a risk of choosing the variant above 0.25 % keeps running (a wide posterior)."""
    r = results("bayesian", [(300, 30), (300, 50)], reached=False)
    result = r.metric(r.variants[1], "lead_capture_rate")
    assert result["chance_to_win"] >= 0.95 and result["risk"][1] > 0.0025
    assert call(r).call == "keep_running"


@pytest.mark.parametrize("engine, arms", [
    ("fixed", [(3000, 300), (3000, 358), (3000, 305)]),  # raw p 0.028, Holm-adjusted 0.057
    ("sequential", [(20000, 2000), (20000, 2220), (20000, 2010)]),  # raw p 0.027, Holm-adjusted 0.055
])
def test_with_three_arms_the_call_uses_the_adjusted_p_value(engine, arms):
    """Holm across two treatment arms: a raw p under α is no longer significant once adjusted."""
    raw = results(engine, arms, reached=True)
    adjusted = results(engine, arms, reached=True, correction="holm")
    first, second = (adjusted.metric(v, "lead_capture_rate") for v in adjusted.treatments)
    assert raw.metric(raw.variants[1], "lead_capture_rate")["p_value_adjusted"] is None
    assert first["p_value"] < 0.05 <= first["p_value_adjusted"]
    assert [first["p_value_adjusted"], second["p_value_adjusted"]] == \
        stats.adjust_p_values([first["p_value"], second["p_value"]], "holm")
    assert call(raw).call == "ship"
    assert call(adjusted).call == "inconclusive" and "adjusted p = " in call(adjusted).reason


def test_secondary_metrics_are_never_adjusted_and_bayesian_ignores_the_correction():
    arms = [(3000, 300), (3000, 350), (3000, 352)]
    r = results("sequential", arms, correction="bh")
    assert r.metric(r.variants[1], "session_length")["p_value_adjusted"] is None
    b = results("bayesian", arms, correction="holm")
    assert not b.corrected and b.metric(b.variants[1], "lead_capture_rate")["p_value_adjusted"] is None


def test_two_arms_are_no_family():
    r = results("fixed", BIG_WIN, correction="holm")
    assert r.metric(r.variants[1], "lead_capture_rate")["p_value_adjusted"] is None


def test_the_days_to_go_have_thousands_separators():
    decision = call(results("sequential", NOTHING, reached=False, days=1006))
    assert "about 1,006 more days (600 more visitors) to the planned sample" in decision.reason
