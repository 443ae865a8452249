"""The statistics of SPEC §7 and §10.2–§10.3, as GrowthBook's stats engine (gbstats 0.8.0) computes them.

Relative lift of a variant over the control from per-visitor sufficient statistics (n, sums, sums of squares, sums of
products), so callers aggregate in SQL and nothing here sees a row. The lift's variance is the delta method's for a
relative difference (and, for ratio metrics, each arm's variance is the delta method's too). Three engines read it:

- `fixed`: a Welch t-test (Welch–Satterthwaite degrees of freedom), valid at one planned look;
- `sequential`: the asymptotic confidence sequence of Waudby-Smith et al. (gbstats' `SequentialTwoSidedTTest`),
  valid however often the results are looked at;
- `bayesian`: a Gaussian posterior on the relative lift (gbstats' `EffectBayesianABTest`), flat or proper prior,
  with the chance to win and the risk (expected loss) of each choice.

`adjust_p_values` corrects a family of p-values as statsmodels' `multipletests` (holm, fdr_bh). docs/statistics.md
explains every number for a user.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats
from scipy.special import ndtr, ndtri

ALPHA = 0.05
MIN_UNITS = 30  # fewer visitors than this in an arm: "not enough data"
SRM_THRESHOLD = 0.001
# Every metric is non-negative, so a relative change cannot fall below −100%; the normal approximation's lower
# bound can, and is shown and drawn clamped there (the exports keep the computed bound).
LOWEST_LIFT = -1.0
# A variance this small relative to the squared mean is floating-point residue, not variation: the sums of squares
# cancel to ~1e-16 of the mean² when every unit has the same value (e.g. exactly one visitor message in every
# conversation), while the smallest real variation of count data is ~1/n of it (1e-8 at 10 million visitors).
ZERO_VARIANCE = 1e-12
SRM_MIN_EXPECTED = 5  # the usual floor of expected counts for Pearson's χ² approximation


@dataclass(frozen=True)
class ProportionStat:
    """A 0/1 metric per unit: n units, `total` of them with a 1."""

    n: int
    total: float

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        return self.mean * (1 - self.mean)


@dataclass(frozen=True)
class MeanStat:
    """A numeric metric per unit: n, Σx, Σx²."""

    n: int
    total: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.sum_squares - self.total ** 2 / self.n) / (self.n - 1))


@dataclass(frozen=True)
class RatioStat:
    """Σm / Σd over units (e.g. messages per conversation), variance by the delta method."""

    n: int
    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    m_d_sum: float

    @property
    def numerator(self) -> MeanStat:
        return MeanStat(self.n, self.m_sum, self.m_sum_squares)

    @property
    def denominator(self) -> MeanStat:
        return MeanStat(self.n, self.d_sum, self.d_sum_squares)

    @property
    def covariance(self) -> float:
        if self.n < 2:
            return 0.0
        return (self.m_d_sum - self.m_sum * self.d_sum / self.n) / (self.n - 1)

    @property
    def mean(self) -> float:
        return self.m_sum / self.d_sum

    @property
    def variance(self) -> float:
        m, d = self.numerator, self.denominator
        return variance_of_ratios(m.mean, m.variance, d.mean, d.variance, self.covariance)


Stat = ProportionStat | MeanStat | RatioStat


def variance_of_ratios(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_m_d: float) -> float:
    """Delta-method variance of m/d."""
    return var_m / mean_d ** 2 + var_d * mean_m ** 2 / mean_d ** 4 - 2 * cov_m_d * mean_m / mean_d ** 3


ENGINES = ("fixed", "sequential", "bayesian")
PRIORS = ("flat", "proper")
CORRECTIONS = ("none", "holm", "bh")
DEFAULT_PRIOR_MEAN = 0.0
DEFAULT_PRIOR_VARIANCE = 0.09  # N(0, 0.3²) on the relative lift (SPEC §10.2)


@dataclass(frozen=True)
class Analysis:
    """The statistical part of an experiment's analysis settings (SPEC §10.1): which engine reads the data and how.

    `prior_mean` / `prior_variance` are the proper prior's N(m, v) on the relative lift (fixed at N(0, 0.09) by the
    SPEC; settable so tests can reproduce gbstats' own proper-prior cases). Invalid values raise ValueError."""

    engine: str = "fixed"
    alpha: float = ALPHA
    sequential_tuning: int = 5000  # N*: the total sample size the sequential boundary is tightest at
    prior: str = "flat"
    prior_mean: float = DEFAULT_PRIOR_MEAN
    prior_variance: float = DEFAULT_PRIOR_VARIANCE

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, not {self.alpha!r}")
        if isinstance(self.sequential_tuning, bool) or not isinstance(self.sequential_tuning, int) \
                or self.sequential_tuning < 1:
            raise ValueError(f"sequential_tuning must be a positive integer, not {self.sequential_tuning!r}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, not {self.prior!r}")
        if not math.isfinite(self.prior_mean):
            raise ValueError(f"prior_mean must be a finite number, not {self.prior_mean!r}")
        if not (math.isfinite(self.prior_variance) and self.prior_variance > 0):
            raise ValueError(f"prior_variance must be a positive number, not {self.prior_variance!r}")


class Significance:
    """`comparison.significant`: true when p < 0.05 (as before the engines), and callable for another level:
    `comparison.significant(0.01)`. A callable boolean, as Django's `CallableBool` kept `user.is_authenticated`
    working both ways. Always false without a p-value (the bayesian engine decides by chance to win and risk)."""

    __slots__ = ("_p_value",)

    def __init__(self, p_value: float | None):
        self._p_value = p_value

    def __call__(self, alpha: float = ALPHA) -> bool:
        return self._p_value is not None and self._p_value < alpha

    def __bool__(self) -> bool:
        return self()

    def __eq__(self, other) -> bool:
        return bool(self) == other if isinstance(other, (bool, Significance)) else NotImplemented

    def __hash__(self) -> int:
        return hash(bool(self))

    def __repr__(self) -> str:
        return repr(bool(self))


@dataclass(frozen=True)
class Comparison:
    """A variant against the control on one metric, by one engine.

    `lift`: the relative lift (for `bayesian`, the posterior mean; with a flat prior the observed lift);
    `ci_low`/`ci_high`: the 1−α confidence interval (`fixed`), confidence sequence (`sequential`, valid at every look)
    or credible interval (`bayesian`); `p_value`: two-sided, None for `bayesian`; `variance`: the delta-method
    variance V of the observed relative lift (the data's, whatever the engine); `stddev`: the standard deviation of
    the lift's distribution as gbstats reports it (√V, or the posterior's σ); `chance_to_win`: P(lift > 0) and
    `risk`: (risk of keeping the control, risk of choosing the variant), the expected relative loss of each choice,
    both for `bayesian` only."""

    lift: float
    ci_low: float
    ci_high: float
    p_value: float | None
    variance: float = math.nan
    engine: str = "fixed"
    alpha: float = ALPHA
    stddev: float = math.nan
    chance_to_win: float | None = None
    risk: tuple[float, float] | None = None

    @property
    def significant(self) -> Significance:
        """Truthy when p < 0.05; `significant(alpha)` for another level. For `sequential` the p-value (and so the
        verdict) is computed for the comparison's own `alpha`, so read it at that level."""
        return Significance(self.p_value)


def shown_lift(value: float) -> float:
    """A lift or an interval bound as the page shows and draws it: no lower than −100% (LOWEST_LIFT)."""
    return max(value, LOWEST_LIFT)


def enough_data(stat: Stat, min_units: int = MIN_UNITS) -> bool:
    """False for an arm too thin or degenerate to compare (SPEC §7)."""
    if stat.n < min_units:
        return False
    if isinstance(stat, RatioStat) and stat.d_sum == 0:
        return False
    return stat.variance > ZERO_VARIANCE * stat.mean ** 2


# Why two arms cannot be compared (shortfall's codes).
FEW_UNITS, NO_DENOMINATOR, ZERO_BASELINE, NO_VARIATION = "few_units", "no_denominator", "zero_baseline", "no_variation"


def shortfall(control: Stat, variant: Stat, min_units: int = MIN_UNITS) -> tuple[str, str] | None:
    """Why `variant` cannot be compared with `control`: (the arm, "control" or "variant"; a reason code), the first
    of: too few units, no denominator (no conversations), a zero control mean (a relative change from 0 is
    undefined), no variation. None when they can be compared. The same for every engine."""
    arms = (("control", control), ("variant", variant))
    for arm, stat in arms:
        if stat.n < min_units:
            return arm, FEW_UNITS
    for arm, stat in arms:
        if isinstance(stat, RatioStat) and stat.d_sum == 0:
            return arm, NO_DENOMINATOR
    if control.mean == 0:
        return "control", ZERO_BASELINE
    for arm, stat in arms:
        if not enough_data(stat, min_units):
            return arm, NO_VARIATION
    return None


def relative_variance(control: Stat, variant: Stat) -> float:
    """The delta-method variance V of the relative lift (μ_v − μ_c)/μ_c (gbstats' `frequentist_variance`, relative):
    σ_v²/(μ_c² n_v) + σ_c² μ_v²/(μ_c⁴ n_c)."""
    return variance_of_ratios(variant.mean, variant.variance / variant.n, control.mean, control.variance / control.n,
                              0.0)


def sequential_rho(alpha: float, sequential_tuning: float) -> float:
    """ρ of the asymptotic confidence sequence, tuned to be tightest at N* units in all (Waudby-Smith et al. 2023,
    eq. 161; gbstats' `SequentialTwoSidedTTest.rho`)."""
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / sequential_tuning)


def sequential_width_factor(n: float, alpha: float, sequential_tuning: float) -> float:
    """D(n) = 2(nρ²+1)·ln(√(nρ²+1)/α)/(nρ)²: the confidence sequence's half-width is √(V·n·D(n))."""
    rho = sequential_rho(alpha, sequential_tuning)
    return 2 * (n * rho ** 2 + 1) * math.log(math.sqrt(n * rho ** 2 + 1) / alpha) / (n * rho) ** 2


def compare(control: Stat, variant: Stat, alpha: float = ALPHA, min_units: int = MIN_UNITS,
            analysis: Analysis | None = None) -> Comparison | None:
    """`variant` against `control` by the engine of `analysis` (the fixed-horizon Welch t-test without one); None
    when the data are too thin (see `shortfall`) or the lift's variance is not a positive number. `analysis.alpha`
    wins over `alpha` when an analysis is given."""
    if analysis is None:
        analysis = Analysis(alpha=alpha)
    if shortfall(control, variant, min_units) is not None:
        return None
    lift = (variant.mean - control.mean) / control.mean
    variance = relative_variance(control, variant)
    if not variance > 0 or not math.isfinite(variance):
        return None
    if analysis.engine == "sequential":
        return _sequential(lift, variance, control.n + variant.n, analysis)
    if analysis.engine == "bayesian":
        return _bayesian(lift, variance, analysis)
    return _fixed(control, variant, lift, variance, analysis.alpha)


def _fixed(control: Stat, variant: Stat, lift: float, variance: float, alpha: float) -> Comparison:
    """Welch t, two-sided, 1−α interval (SPEC §7; gbstats' `TwoSidedTTest`)."""
    var_a, var_b = control.variance / control.n, variant.variance / variant.n
    dof = (var_a + var_b) ** 2 / (var_a ** 2 / (control.n - 1) + var_b ** 2 / (variant.n - 1))
    std_error = math.sqrt(variance)
    t_value = lift / std_error
    p_value = 2 * scipy_stats.t.sf(abs(t_value), dof)
    half_width = scipy_stats.t.ppf(1 - alpha / 2, dof) * std_error
    return Comparison(lift, lift - half_width, lift + half_width, float(p_value), variance=variance, engine="fixed",
                      alpha=alpha, stddev=std_error)


def _sequential(lift: float, variance: float, n: int, analysis: Analysis) -> Comparison:
    """The asymptotic confidence sequence (gbstats' `SequentialTwoSidedTTest`): half-width √(V·n)·√D(n), and
    p = min(1, 1/E) with the e-value E = exp(ρ²·(Δ̂²n/V)/(2(nρ²+1)))/√(nρ²+1), taken in logs so a huge E gives
    p ≈ 0 instead of overflowing."""
    alpha, tuning = analysis.alpha, analysis.sequential_tuning
    rho = sequential_rho(alpha, tuning)
    half_width = math.sqrt(variance * n) * math.sqrt(sequential_width_factor(n, alpha, tuning))
    tr2p1 = n * rho ** 2 + 1
    log_e_value = rho ** 2 * (lift ** 2 * n / variance) / (2 * tr2p1) - 0.5 * math.log(tr2p1)
    p_value = 1.0 if log_e_value <= 0 else math.exp(-log_e_value)
    return Comparison(lift, lift - half_width, lift + half_width, p_value, variance=variance, engine="sequential",
                      alpha=alpha, stddev=math.sqrt(variance))


def _bayesian(lift: float, variance: float, analysis: Analysis) -> Comparison:
    """A Gaussian posterior on the relative lift (gbstats' `EffectBayesianABTest`): flat prior → N(Δ̂, V); proper
    prior N(m, v) → precision 1/V + 1/v, mean (Δ̂/V + m/v)/precision. Chance to win P(L > 0), the central 1−α
    credible interval, and the risk [(1−P₀)·E[L | L>0], −P₀·E[L | L<0]] (gbstats' `get_risk`) in the closed form of
    those truncated-normal means: μΦ(μ/σ) + σφ(μ/σ) and σφ(μ/σ) − μΦ(−μ/σ)."""
    proper = analysis.prior == "proper"
    precision = 1 / variance + (1 / analysis.prior_variance if proper else 0.0)
    mean = (lift / variance + analysis.prior_mean / analysis.prior_variance) / precision if proper else lift
    sigma = math.sqrt(1 / precision)
    # scipy.stats.norm's ppf/sf/cdf/pdf are these special functions behind ~0.3 ms of argument handling each
    low, high = mean + sigma * float(ndtri(analysis.alpha / 2)), mean + sigma * float(ndtri(1 - analysis.alpha / 2))
    z = mean / sigma
    chance_to_win = float(ndtr(z))
    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    risk_control = mean * chance_to_win + sigma * density
    risk_variant = sigma * density - mean * float(ndtr(-z))
    return Comparison(mean, float(low), float(high), None, variance=variance, engine="bayesian", alpha=analysis.alpha,
                      stddev=sigma, chance_to_win=chance_to_win,
                      risk=(max(0.0, risk_control), max(0.0, risk_variant)))


def adjust_p_values(p_values: list[float | None], method: str) -> list[float | None]:
    """A family's p-values adjusted exactly as statsmodels' `multipletests(method="holm" | "fdr_bh")` (SPEC §10.3),
    in the order given; "none" returns them unchanged. None (an arm that could not be compared) stays None and is not
    counted in the family. Holm (step-down, controls the family-wise error rate): the k-th smallest p times
    (m − k + 1), made non-decreasing in that order; Benjamini–Hochberg (step-up, controls the false discovery rate):
    the k-th smallest p divided by k/m, made non-increasing from the largest down; both capped at 1."""
    if method not in CORRECTIONS:
        raise ValueError(f"method must be one of {', '.join(CORRECTIONS)}, not {method!r}")
    if method == "none":
        return list(p_values)
    present = [i for i, p in enumerate(p_values) if p is not None]
    for i in present:
        if not 0 <= p_values[i] <= 1:  # NaN fails too
            raise ValueError(f"p-values must be between 0 and 1, not {p_values[i]!r}")
    order = sorted(present, key=lambda i: p_values[i])  # stable; ties get equal adjusted values either way
    m = len(order)
    ranked = [float(p_values[i]) for i in order]
    if method == "holm":
        raw = [p * (m - k) for k, p in enumerate(ranked)]
        adjusted, running = [], -math.inf
        for value in raw:
            running = max(running, value)
            adjusted.append(running)
    else:
        raw = [p / ((k + 1) / m) for k, p in enumerate(ranked)]
        adjusted, running = [0.0] * m, math.inf
        for k in range(m - 1, -1, -1):
            running = min(running, raw[k])
            adjusted[k] = running
    result: list[float | None] = [None] * len(p_values)
    for i, value in zip(order, adjusted):
        result[i] = min(value, 1.0)
    return result


def srm_p_value(observed: list[int], weights: list[int]) -> float | None:
    """Pearson χ² of visitors per variant against the normalised weights; None without visitors."""
    total = sum(observed)
    if total == 0 or len(observed) < 2:
        return None
    weight_total = sum(weights)
    expected = [total * w / weight_total for w in weights]
    return float(scipy_stats.chisquare(observed, expected).pvalue)
