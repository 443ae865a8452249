"""SPEC §10.2: the fixed, sequential and bayesian engines, against the SPEC's reference values (gbstats' own tests)
to the digits given, and against gbstats 0.8.0 itself to 1e-6 on random cases of every engine and metric type."""
import math
import random
import warnings

import gbstats.bayesian.tests as gb_bayesian  # the oracle: a test dependency (pyproject's [test] extra)
import gbstats.frequentist.tests as gb_frequentist
import gbstats.models.statistics as gb_statistics
import pytest

from webapp.services.experiments.stats import (Analysis, Comparison, MeanStat, ProportionStat, RatioStat, compare,
                                               relative_variance, shortfall)

TOL = 1e-6

SEQUENTIAL = Analysis(engine="sequential")
BAYESIAN = Analysis(engine="bayesian")


def digits(value: str) -> float:
    """The tolerance of a reference value: half a unit in its last written digit (0.5e-10 for 0.0408163265)."""
    mantissa = value.lower().split("e")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(value.lower().split("e")[1]) if "e" in value.lower() else 0
    return 0.5 * 10 ** (exponent - decimals)


def near(actual: float, reference: str) -> bool:
    return abs(actual - float(reference)) <= digits(reference) * (1 + 1e-9)


# ---- reference values of SPEC §10.2 ----

def test_sequential_proportion_reference():
    result = compare(ProportionStat(3000, 1396), ProportionStat(3461, 2422),
                     analysis=Analysis(engine="sequential", sequential_tuning=5000, alpha=0.05))
    assert result.engine == "sequential"
    assert near(result.lift, "0.5038633517")
    assert near(result.ci_low, "0.4009784967") and near(result.ci_high, "0.6067482067")
    assert near(result.p_value, "5.17e-44")
    assert result.chance_to_win is None and result.risk is None


def test_sequential_mean_reference():
    result = compare(MeanStat(3000, 1396.87, 52377.9767), MeanStat(3461, 2422.7, 134698.29),
                     analysis=Analysis(engine="sequential", sequential_tuning=1000))
    assert near(result.lift, "0.5033610859")
    assert near(result.ci_low, "-0.5584405051") and near(result.ci_high, "1.5651626768")
    assert result.p_value == 1


def test_bayesian_flat_proportion_reference():
    result = compare(ProportionStat(100, 49), ProportionStat(100, 51), analysis=BAYESIAN)
    assert result.engine == "bayesian" and result.p_value is None
    assert near(result.lift, "0.0408163265") and near(result.stddev, "0.1472525457")
    assert near(result.ci_low, "-0.2477933597") and near(result.ci_high, "0.3294260128")
    assert near(result.chance_to_win, "0.6091813096")
    assert near(result.risk[0], "0.0813958492") and near(result.risk[1], "0.0405795226")
    assert result.variance == pytest.approx(result.stddev ** 2)  # flat prior: the posterior is the data's


def test_bayesian_flat_mean_reference():
    result = compare(MeanStat(10, 100, 1002.25), MeanStat(10, 105, 1111.5), min_units=10, analysis=BAYESIAN)
    assert near(result.lift, "0.05")
    assert near(result.ci_low, "-0.0200018636") and near(result.ci_high, "0.1200018636")
    assert near(result.chance_to_win, "0.9192339082")
    assert near(result.risk[0], "0.0513098172") and near(result.risk[1], "0.0013098172")


def test_bayesian_proper_prior_of_gbstats_tests():
    result = compare(MeanStat(10, 100, 1002.25), MeanStat(10, 105, 1111.5), min_units=10,
                     analysis=Analysis(engine="bayesian", prior="proper", prior_mean=0.1, prior_variance=0.1))
    assert near(result.lift, "0.0506297789")
    assert near(result.ci_low, "-0.0189298307") and near(result.ci_high, "0.1201893885")
    assert near(result.chance_to_win, "0.9231499086")


def test_bayesian_spec_proper_prior_reference():
    result = compare(ProportionStat(1000, 100), ProportionStat(1000, 130),
                     analysis=Analysis(engine="bayesian", prior="proper"))  # N(0, 0.09): SPEC §10.1's prior
    assert near(result.lift, "0.2317198764")
    assert near(result.ci_low, "-0.0487949804") and near(result.ci_high, "0.5122347333")
    assert near(result.chance_to_win, "0.9472798426")
    assert near(result.risk[0], "0.2348998997") and near(result.risk[1], "0.0031800232")
    # the prior shrinks the observed lift (0.3) toward 0 and narrows the interval
    flat = compare(ProportionStat(1000, 100), ProportionStat(1000, 130), analysis=BAYESIAN)
    assert flat.lift == pytest.approx(0.3) and result.lift < flat.lift
    assert result.ci_high - result.ci_low < flat.ci_high - flat.ci_low


# ---- the interface ----

def test_without_analysis_compare_is_the_fixed_engine_of_section_7():
    control, variant = ProportionStat(1000, 100), ProportionStat(1000, 130)
    default = compare(control, variant)
    assert default == compare(control, variant, analysis=Analysis())
    assert default.engine == "fixed" and default.chance_to_win is None and default.risk is None
    assert near(default.ci_low, "-0.0193753723") and near(default.p_value, "0.0655973326")
    assert default.variance == pytest.approx(relative_variance(control, variant))
    assert default.stddev == pytest.approx(math.sqrt(default.variance))


def test_analysis_alpha_wins_over_the_alpha_argument():
    control, variant = ProportionStat(1000, 100), ProportionStat(1000, 130)
    wide = compare(control, variant, alpha=0.5, analysis=Analysis(alpha=0.01))
    assert wide == compare(control, variant, alpha=0.01)
    assert wide.alpha == 0.01
    assert wide.ci_high - wide.ci_low > compare(control, variant).ci_high - compare(control, variant).ci_low


def test_significant_is_a_property_at_five_percent_and_a_method_at_any_level():
    result = compare(MeanStat(1000, 10000, 109000), MeanStat(1000, 10500, 119250))  # p = 0.000287
    assert result.significant and result.significant == True  # noqa: E712 (the property, as before)
    assert result.significant(0.001) and not result.significant(0.0001)
    weak = compare(ProportionStat(1000, 100), ProportionStat(1000, 130))  # p = 0.0656
    assert not weak.significant and weak.significant(0.10)
    assert not compare(ProportionStat(1000, 100), ProportionStat(1000, 130), analysis=BAYESIAN).significant(0.99)


def test_a_comparison_still_builds_from_four_values():
    comparison = Comparison(0.1, 0.0, 0.2, 0.04)
    assert comparison.significant and comparison.engine == "fixed" and comparison.risk is None


@pytest.mark.parametrize("bad", [
    dict(engine="frequentist"), dict(alpha=0), dict(alpha=1.5), dict(sequential_tuning=0),
    dict(sequential_tuning=2.5), dict(prior="jeffreys"), dict(prior_variance=0), dict(prior_mean=math.nan),
])
def test_invalid_analysis_settings_are_refused(bad):
    with pytest.raises(ValueError):
        Analysis(**bad)


@pytest.mark.parametrize("analysis", [Analysis(), SEQUENTIAL, BAYESIAN, Analysis(engine="bayesian", prior="proper")])
@pytest.mark.parametrize("control,variant", [
    (ProportionStat(29, 5), ProportionStat(1000, 130)),
    (ProportionStat(1000, 0), ProportionStat(1000, 130)),
    (ProportionStat(1000, 1000), ProportionStat(1000, 990)),
    (MeanStat(100, 500, 2500), MeanStat(100, 600, 4000)),
    (RatioStat(100, 0, 0, 0, 0, 0), RatioStat(100, 50, 60, 100, 120, 70)),
])
def test_not_enough_data_for_every_engine(analysis, control, variant):
    assert shortfall(control, variant) is not None
    assert compare(control, variant, analysis=analysis) is None


def test_sequential_is_wider_than_fixed_near_its_tuning_and_valid_p():
    control, variant = ProportionStat(2500, 250), ProportionStat(2500, 300)
    fixed, sequential = compare(control, variant), compare(control, variant, analysis=SEQUENTIAL)
    assert sequential.lift == fixed.lift
    assert sequential.ci_low < fixed.ci_low and sequential.ci_high > fixed.ci_high
    assert fixed.p_value < sequential.p_value <= 1


def test_sequential_p_value_does_not_overflow_on_huge_evidence():
    result = compare(ProportionStat(10 ** 7, 10 ** 6), ProportionStat(10 ** 7, 2 * 10 ** 6), analysis=SEQUENTIAL)
    assert result.p_value == 0.0 or result.p_value < 1e-300
    assert result.ci_low < 1 < result.ci_high


# ---- agreement with gbstats 0.8.0 itself, to 1e-6, on random cases of every engine and metric type ----


CASES = 250  # per engine × metric type; every one is compared (the generator avoids "not enough data")
ALPHAS = (0.01, 0.05, 0.10)


def random_proportion(rng, like=None):
    """A random arm; `like`: an arm near it (a similar size and a lift of −5% to +8%), the realistic case."""
    if like is None:
        n = rng.choice([rng.randint(30, 200), rng.randint(200, 5000), rng.randint(5000, 500_000)])
        rate = rng.uniform(0.02, 0.95)
    else:
        n = max(30, round(like.n * rng.uniform(0.8, 1.2)))
        rate = like.mean * rng.uniform(0.95, 1.08)
    return ProportionStat(n, min(n - 1, max(1, round(n * rate))))


def moments(n, mean, sd):
    """Σx and Σx² of n values with this sample mean and standard deviation."""
    total = mean * n
    return total, sd ** 2 * (n - 1) + total ** 2 / n


def arm_size(rng, like):
    if like is None:
        return rng.choice([rng.randint(30, 300), rng.randint(300, 100_000)])
    return max(30, round(like.n * rng.uniform(0.8, 1.2)))


def random_mean(rng, like=None):
    n = arm_size(rng, like)
    mean = rng.uniform(0.5, 200) if like is None else like.mean * rng.uniform(0.95, 1.08)
    sd = mean * rng.uniform(0.05, 3) if like is None else math.sqrt(like.variance) * rng.uniform(0.8, 1.25)
    return MeanStat(n, *moments(n, mean, sd))


def random_ratio(rng, like=None):
    """Per-unit numerator and denominator with a random correlation, as Σm, Σm², Σd, Σd², Σmd."""
    n = arm_size(rng, like)
    if like is None:
        mean_d, mean_m = rng.uniform(0.5, 5), rng.uniform(0.5, 40)
        sd_d, sd_m = mean_d * rng.uniform(0.1, 1.5), mean_m * rng.uniform(0.1, 1.5)
    else:
        m, d = like.numerator, like.denominator
        mean_d, mean_m = d.mean * rng.uniform(0.95, 1.05), m.mean * rng.uniform(0.95, 1.08)
        sd_d, sd_m = math.sqrt(d.variance), math.sqrt(m.variance) * rng.uniform(0.8, 1.25)
    correlation = rng.uniform(-0.6, 0.95)
    m_sum, m_squares = moments(n, mean_m, sd_m)
    d_sum, d_squares = moments(n, mean_d, sd_d)
    m_d_sum = correlation * sd_m * sd_d * (n - 1) + m_sum * d_sum / n
    return RatioStat(n, m_sum, m_squares, d_sum, d_squares, m_d_sum)


def pair(rng, make):
    """A control and a variant of the same kind: mostly a variant near the control, sometimes an unrelated one."""
    control = make(rng)
    return control, make(rng, like=None if rng.random() < 0.25 else control)


def to_gbstats(stat):
    if isinstance(stat, ProportionStat):
        return gb_statistics.ProportionStatistic(n=stat.n, sum=stat.total)
    if isinstance(stat, MeanStat):
        return gb_statistics.SampleMeanStatistic(n=stat.n, sum=stat.total, sum_squares=stat.sum_squares)
    return gb_statistics.RatioStatistic(
        n=stat.n,
        m_statistic=gb_statistics.SampleMeanStatistic(n=stat.n, sum=stat.m_sum, sum_squares=stat.m_sum_squares),
        d_statistic=gb_statistics.SampleMeanStatistic(n=stat.n, sum=stat.d_sum, sum_squares=stat.d_sum_squares),
        m_d_sum_of_products=stat.m_d_sum)


def random_analysis(rng, engine):
    alpha = rng.choice(ALPHAS)
    if engine == "sequential":
        return Analysis(engine=engine, alpha=alpha, sequential_tuning=rng.choice([100, 1000, 5000, 50_000,
                                                                                  rng.randint(100, 1_000_000)]))
    if engine == "bayesian":
        roll = rng.random()
        if roll < 0.4:
            return Analysis(engine=engine, alpha=alpha)
        if roll < 0.7:
            return Analysis(engine=engine, alpha=alpha, prior="proper")  # the SPEC's N(0, 0.3²)
        return Analysis(engine=engine, alpha=alpha, prior="proper", prior_mean=rng.uniform(-0.3, 0.3),
                        prior_variance=rng.uniform(0.001, 1))
    return Analysis(engine=engine, alpha=alpha)


def oracle(control, variant, analysis):
    """gbstats' own result. Its harmless floating-point warnings (exp overflowing to an infinite e-value, so p = 0;
    truncnorm's unused skewness) are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _oracle(control, variant, analysis)


def _oracle(control, variant, analysis):
    a, b = to_gbstats(control), to_gbstats(variant)
    if analysis.engine == "fixed":
        return gb_frequentist.TwoSidedTTest(a, b, gb_frequentist.FrequentistConfig(alpha=analysis.alpha)) \
            .compute_result()
    if analysis.engine == "sequential":
        config = gb_frequentist.SequentialConfig(alpha=analysis.alpha,
                                                 sequential_tuning_parameter=analysis.sequential_tuning)
        return gb_frequentist.SequentialTwoSidedTTest(a, b, config).compute_result()
    prior = gb_bayesian.GaussianPrior(mean=analysis.prior_mean, variance=analysis.prior_variance,
                                      proper=analysis.prior == "proper")
    config = gb_bayesian.EffectBayesianConfig(alpha=analysis.alpha, prior_effect=prior)
    return gb_bayesian.EffectBayesianABTest(a, b, config).compute_result()


def assert_agrees(ours, theirs):
    assert theirs.error_message is None
    assert abs(ours.lift - theirs.expected) <= TOL
    assert abs(ours.ci_low - theirs.ci[0]) <= TOL and abs(ours.ci_high - theirs.ci[1]) <= TOL
    assert abs(ours.stddev - theirs.uplift.stddev) <= TOL
    if ours.engine == "bayesian":
        assert ours.p_value is None
        assert abs(ours.chance_to_win - theirs.chance_to_win) <= TOL
        assert abs(ours.risk[0] - theirs.risk[0]) <= TOL and abs(ours.risk[1] - theirs.risk[1]) <= TOL
    else:
        assert abs(ours.p_value - theirs.p_value) <= TOL
        assert ours.chance_to_win is None and ours.risk is None


@pytest.mark.parametrize("engine", ["fixed", "sequential", "bayesian"])
@pytest.mark.parametrize("kind,make", [("proportion", random_proportion), ("mean", random_mean),
                                       ("ratio", random_ratio)])
def test_agrees_with_gbstats_on_random_cases(engine, kind, make):
    rng = random.Random(f"{engine}-{kind}-20261202")
    compared = undecided = 0
    for _ in range(CASES):
        control, variant = pair(rng, make)
        analysis = random_analysis(rng, engine)
        ours = compare(control, variant, analysis=analysis)
        assert ours is not None, (control, variant)
        assert ours.engine == engine and ours.alpha == analysis.alpha
        assert_agrees(ours, oracle(control, variant, analysis))
        compared += 1
        undecided += ours.p_value > 0.001 if ours.p_value is not None else 0.001 < ours.chance_to_win < 0.999
    assert compared >= 200
    assert undecided >= 100  # many close calls, not only overwhelming evidence


@pytest.mark.parametrize("engine", ["fixed", "sequential", "bayesian"])
@pytest.mark.parametrize("control,variant", [
    (ProportionStat(1000, 0), ProportionStat(1000, 130)),                 # zero baseline
    (ProportionStat(1000, 1000), ProportionStat(1000, 990)),              # no variation in the control
    (MeanStat(100, 500, 2500), MeanStat(100, 600, 4000)),                 # every control value equal
])
def test_where_gbstats_cannot_compare_neither_do_we(engine, control, variant):
    analysis = Analysis(engine=engine)
    assert compare(control, variant, analysis=analysis) is None
    assert oracle(control, variant, analysis).error_message is not None
