"""SPEC §7 reference values (GrowthBook's frequentist engine) to 1e-6."""
import pytest

from webapp.services.stats import (MeanStat, ProportionStat, RatioStat, compare, enough_data, srm_p_value,
                                   variance_of_ratios)

TOL = 1e-6


def check(result, lift, low, high, p):
    assert result is not None
    assert result.lift == pytest.approx(lift, abs=TOL)
    assert result.ci_low == pytest.approx(low, abs=TOL)
    assert result.ci_high == pytest.approx(high, abs=TOL)
    assert result.p_value == pytest.approx(p, abs=TOL)


def test_proportion_reference():
    check(compare(ProportionStat(1000, 100), ProportionStat(1000, 130)),
          0.3, -0.0193753723, 0.6193753723, 0.0655973326)


def test_mean_reference():
    check(compare(MeanStat(1000, 10000, 109000), MeanStat(1000, 10500, 119250)),
          0.05, 0.0230090748, 0.0769909252, 0.0002872309)


def test_ratio_reference():
    control = RatioStat(400, 1800, 10400, 520, 800, 2700)
    variant = RatioStat(410, 1950, 11900, 525, 810, 2900)
    check(compare(control, variant), 0.0730158730, 0.0132913991, 0.1327403469, 0.0166324331)


def test_srm_reference():
    assert srm_p_value([5000, 5200], [1, 1]) == pytest.approx(0.0476703807, abs=TOL)
    assert srm_p_value([5000, 5200], [50, 50]) == pytest.approx(0.0476703807, abs=TOL)
    assert srm_p_value([0, 0], [1, 1]) is None


def test_srm_uses_the_weights():
    assert srm_p_value([900, 100], [9, 1]) == pytest.approx(1.0)
    assert srm_p_value([500, 500], [9, 1]) < 1e-10


@pytest.mark.parametrize("control,variant", [
    (ProportionStat(29, 5), ProportionStat(1000, 130)),            # too few visitors
    (ProportionStat(1000, 0), ProportionStat(1000, 130)),          # zero baseline (and zero variance)
    (ProportionStat(1000, 1000), ProportionStat(1000, 990)),       # zero variance
    (MeanStat(100, 500, 2500), MeanStat(100, 600, 4000)),          # every control value equal: zero variance
    (RatioStat(100, 0, 0, 0, 0, 0), RatioStat(100, 50, 60, 100, 120, 70)),  # zero denominator
])
def test_not_enough_data(control, variant):
    assert compare(control, variant) is None


def test_enough_data_threshold():
    assert not enough_data(ProportionStat(29, 10))
    assert enough_data(ProportionStat(30, 10))


def test_variance_of_ratios_matches_delta_method():
    # var(m/d) ≈ var_m/μd² + var_d·μm²/μd⁴ − 2·cov·μm/μd³
    assert variance_of_ratios(2.0, 0.5, 4.0, 0.25, 0.1) == pytest.approx(0.5 / 16 + 0.25 * 4 / 256 - 2 * 0.1 * 2 / 64)


def exact_ratio(per_unit: list[tuple[int, int]]) -> RatioStat:
    """A RatioStat from (numerator, denominator) per unit, as SQL sums them."""
    m, d = [u[0] for u in per_unit], [u[1] for u in per_unit]
    return RatioStat(len(per_unit), sum(m), sum(x * x for x in m), sum(d), sum(x * x for x in d),
                     sum(a * b for a, b in zip(m, d)))


def test_a_ratio_without_variation_is_zero_variance_despite_rounding():
    """Every conversation of an arm has exactly k visitor messages: the ratio's variance is 0, but the delta method's
    floating-point arithmetic leaves ~1e-16 of it. That is no evidence: "not enough data", not "+100%, p = 0"."""
    conversations = [i % 3 + 1 for i in range(32)]
    control = exact_ratio([(1 * d, d) for d in conversations])
    variant = exact_ratio([(2 * d, d) for d in conversations])
    assert control.variance != 0 and variant.variance != 0  # the rounding residue this guards against
    assert not enough_data(control) and not enough_data(variant)
    assert compare(control, variant) is None


def test_the_smallest_real_variation_still_counts():
    """One visitor of 10 million sending one more message is variation (relative variance ~1e-8, far above
    the ~1e-16 of rounding)."""
    n = 10_000_000
    assert enough_data(RatioStat(n, n + 1, n + 3, n, n, n + 1))
    assert enough_data(ProportionStat(n, 1))
