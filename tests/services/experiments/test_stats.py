"""SPEC §7 reference values (GrowthBook's frequentist engine) to 1e-6."""
import pytest

from webapp.services.experiments.stats import (MeanStat, ProportionStat, RatioStat, compare, enough_data, srm_p_value,
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


# More vectors from GrowthBook's engine itself (gbstats 0.8.0, TwoSidedTTest, relative): unequal arms, rates far from
# 50%, ratios with n ≈ 70–270. Recomputed outside this project; `compare` must agree to 1e-6.
@pytest.mark.parametrize("control,variant,expected", [
    (ProportionStat(2292, 948), ProportionStat(1575, 578),
     (-0.11273457906369301, -0.1847502164339288, -0.0407189416934572, 0.0021627799591930064)),
    (ProportionStat(224, 67), ProportionStat(698, 235),
     (0.12560407133387505, -0.1294628154661354, 0.3806709581338855, 0.33355711797359544)),
    (ProportionStat(4357, 3581), ProportionStat(108, 81),
     (-0.08747556548450153, -0.1887370406128573, 0.013785909643854247, 0.08972865099436134)),
    (RatioStat(219, 1033, 7559, 552, 1664, 2952), RatioStat(275, 1260, 9310, 673, 2009, 3591),
     (0.0004473474883092849, -0.12447167208767032, 0.12536636706428889, 0.9943884133329726)),
    (RatioStat(67, 322, 2262, 171, 533, 960), RatioStat(83, 383, 2847, 205, 591, 1056),
     (-0.007832146644447759, -0.22175849242068305, 0.20609419913178753, 0.942422132779356)),
])
def test_more_growthbook_vectors(control, variant, expected):
    check(compare(control, variant), *expected)


def test_srm_against_growthbook_check_srm():
    """gbstats.utils.check_srm on unequal weights and an empty arm."""
    assert srm_p_value([900, 130], [9, 1]) == pytest.approx(0.005042654207725584, abs=TOL)
    assert srm_p_value([10, 90, 0], [1, 8, 1]) == pytest.approx(0.0036065631360157305, abs=TOL)
