"""SPEC §10.4: GrowthBook's power formula, the exact minimal sample size, the MDE and the visitors in all."""
import pytest

from webapp.services.experiments.power import (minimum_detectable_effect, power, visitors_needed,
                                               visitors_per_arm)

# GrowthBook's power tests (SPEC §10.4)
MEAN, VARIANCE, MDE, N = 10, 3909.9997749994377, 0.05, 400_000 / 3


def test_fixed_power_reference():
    assert power(MEAN, VARIANCE, MDE, N, alpha=0.05) == pytest.approx(0.5214409192, abs=0.5e-10)


def test_sequential_power_reference():
    assert power(MEAN, VARIANCE, MDE, N, alpha=0.05, engine="sequential", sequential_tuning=5000) == \
        pytest.approx(0.2059567432, abs=0.5e-10)


def test_bayesian_plans_as_fixed():
    assert power(MEAN, VARIANCE, MDE, N, engine="bayesian") == power(MEAN, VARIANCE, MDE, N)


def test_mde_reference():
    assert minimum_detectable_effect(MEAN, VARIANCE, N, 0.8, alpha=0.05) == pytest.approx(0.0702724988, abs=0.5e-10)


def test_the_mde_is_detected_with_the_target_power():
    """The MDE inverts the power formula: at N, an effect of exactly the MDE has 80% power."""
    mde = minimum_detectable_effect(MEAN, VARIANCE, N, 0.8)
    assert 0.8 <= power(MEAN, VARIANCE, mde, N) < 0.8 + 1e-5  # the MDE neglects the far tail Φ(−z−Δ/SE)


def test_no_mde_when_the_sample_is_too_small():
    # N ≤ q²σ²/μ²: with q ≈ 2.80 at 80% power and 5%, q² ≈ 7.85, σ²/μ² = 39.1, so N ≤ 307 has no MDE
    threshold = (1.959963984540054 + 0.8416212335729143) ** 2 * VARIANCE / MEAN ** 2
    assert minimum_detectable_effect(MEAN, VARIANCE, int(threshold), 0.8) is None
    assert minimum_detectable_effect(MEAN, VARIANCE, int(threshold) + 1, 0.8) is not None


@pytest.mark.parametrize("engine,tuning", [("fixed", 5000), ("sequential", 5000), ("sequential", 100),
                                           ("bayesian", 5000)])
@pytest.mark.parametrize("mean,variance,mde,target", [
    (0.1, 0.09, 0.1, 0.8),          # a 10% lead rate, +10%
    (0.1, 0.09, 0.5, 0.9),
    (0.5, 0.25, 0.02, 0.8),
    (3.2, 2.7, 0.05, 0.95),         # a ratio metric's delta-method variance
    (MEAN, VARIANCE, MDE, 0.8),
])
def test_visitors_per_arm_is_the_smallest_n_reaching_the_power(engine, tuning, mean, variance, mde, target):
    n = visitors_per_arm(mean, variance, mde, target, engine=engine, sequential_tuning=tuning)
    assert isinstance(n, int) and n >= 2
    assert power(mean, variance, mde, n, engine=engine, sequential_tuning=tuning) >= target
    if n > 2:
        assert power(mean, variance, mde, n - 1, engine=engine, sequential_tuning=tuning) < target


def test_sample_size_of_a_ten_percent_rate_by_hand():
    # 10% → 11% at α 0.05 and 80% power: N = (z + z_β)²·σ²(1 + (1+Δ)²)/(μ²Δ²) with σ² = 0.09 in both arms
    # (GrowthBook's formula takes the baseline's variance for both), neglecting the far tail: 15,611.6 → 15,612
    by_hand = (1.959963984540054 + 0.8416212335729143) ** 2 * 0.09 * (1 + 1.1 ** 2) / (0.1 ** 2 * 0.1 ** 2)
    assert 15_611 < by_hand < 15_612
    assert visitors_per_arm(0.1, 0.09, 0.1, 0.8) == 15_612


def test_sequential_needs_more_visitors_than_fixed():
    fixed = visitors_per_arm(0.1, 0.09, 0.1, 0.8)
    sequential = visitors_per_arm(0.1, 0.09, 0.1, 0.8, engine="sequential")
    assert sequential > fixed
    assert visitors_per_arm(0.1, 0.09, 0.1, 0.8, engine="bayesian") == fixed


def test_sample_size_is_monotone():
    sizes_by_mde = [visitors_per_arm(0.1, 0.09, mde, 0.8) for mde in (0.02, 0.05, 0.1, 0.2, 0.5)]
    assert sizes_by_mde == sorted(sizes_by_mde, reverse=True) and len(set(sizes_by_mde)) == 5
    sizes_by_power = [visitors_per_arm(0.1, 0.09, 0.1, p) for p in (0.5, 0.7, 0.8, 0.9, 0.99)]
    assert sizes_by_power == sorted(sizes_by_power) and len(set(sizes_by_power)) == 5
    sizes_by_alpha = [visitors_per_arm(0.1, 0.09, 0.1, 0.8, alpha=a) for a in (0.10, 0.05, 0.01)]
    assert sizes_by_alpha == sorted(sizes_by_alpha) and len(set(sizes_by_alpha)) == 3
    powers = [power(0.1, 0.09, 0.1, n, engine="sequential") for n in (10, 100, 1000, 10_000, 100_000)]
    assert powers == sorted(powers)


def test_a_huge_effect_needs_the_minimum_of_two():
    assert visitors_per_arm(10, 1, 1.0, 0.9) == 2  # Δ/SE = 6.3 at N = 2


def test_an_unreachable_plan_is_none():
    # a 0.5% lift on a metric with a huge spread needs more than 10¹² visitors an arm
    assert visitors_per_arm(0.001, 1e6, 0.005, 0.99) is None


@pytest.mark.parametrize("per_arm,weights,expected", [
    (1000, [1, 1], 2000),
    (1000, [50, 50], 2000),
    (1000, [1, 1, 1], 3000),
    (1000, [70, 30], 3334),       # ⌈1000 / 0.3⌉ = ⌈3333.3⌉
    (999, [2, 1], 2997),          # exact: 999 × 3 / 1
    (1001, [60, 25, 15], 6674),   # ⌈1001 × 100 / 15⌉ = ⌈6673.3⌉
    (0, [1, 1], 0),
])
def test_visitors_needed_is_an_integer_ceiling_by_the_smallest_arm(per_arm, weights, expected):
    assert visitors_needed(per_arm, weights) == expected


def test_visitors_needed_is_exact_where_floats_are_not():
    # 10 visitors an arm at 1:1:1 where 10 / (1/3) = 30.000000000000004 in floating point
    assert visitors_needed(10, [1, 1, 1]) == 30
    assert visitors_needed(10 ** 15 + 1, [1, 2]) == 3 * (10 ** 15 + 1)


@pytest.mark.parametrize("call", [
    lambda: power(0, 1, 0.1, 100),
    lambda: power(0.1, 0, 0.1, 100),
    lambda: power(0.1, 0.09, 0, 100),
    lambda: power(0.1, 0.09, 0.1, 0),
    lambda: power(0.1, 0.09, 0.1, 100, alpha=1),
    lambda: power(0.1, 0.09, 0.1, 100, engine="magic"),
    lambda: visitors_per_arm(0.1, 0.09, 0.1, 1.0),
    lambda: minimum_detectable_effect(0.1, 0.09, 100, 0),
    lambda: visitors_needed(100, []),
    lambda: visitors_needed(100, [1, 0]),
    lambda: visitors_needed(-1, [1, 1]),
])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()
