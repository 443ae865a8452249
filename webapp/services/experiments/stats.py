"""Frequentist statistics of SPEC §7, as GrowthBook's stats engine computes them.

Relative lift of a variant over the control, with a Welch t-test (Welch–Satterthwaite degrees of
freedom), the delta method for the variance of the relative difference, and the delta method for
ratio metrics. Inputs are sufficient statistics (n, sums, sums of squares, sums of products), so
callers aggregate in SQL and nothing here sees a row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

ALPHA = 0.05
MIN_UNITS = 30  # fewer visitors than this in an arm: "not enough data"
SRM_THRESHOLD = 0.001
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


@dataclass(frozen=True)
class Comparison:
    """A variant against the control: relative lift, its CI and two-sided p-value."""

    lift: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


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
    undefined), no variation. None when they can be compared."""
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


def compare(control: Stat, variant: Stat, alpha: float = ALPHA, min_units: int = MIN_UNITS) -> Comparison | None:
    """Relative-lift Welch t-test of `variant` vs `control`; None when the data are too thin (see `shortfall`)."""
    if shortfall(control, variant, min_units) is not None:
        return None
    mean_a, mean_b = control.mean, variant.mean
    var_a, var_b = control.variance / control.n, variant.variance / variant.n
    lift = (mean_b - mean_a) / mean_a
    variance = variance_of_ratios(mean_b, var_b, mean_a, var_a, 0.0)
    if not variance > 0 or not math.isfinite(variance):
        return None
    dof = (var_a + var_b) ** 2 / (var_a ** 2 / (control.n - 1) + var_b ** 2 / (variant.n - 1))
    std_error = math.sqrt(variance)
    t_value = lift / std_error
    p_value = 2 * scipy_stats.t.sf(abs(t_value), dof)
    half_width = scipy_stats.t.ppf(1 - alpha / 2, dof) * std_error
    return Comparison(lift, lift - half_width, lift + half_width, float(p_value))


def srm_p_value(observed: list[int], weights: list[int]) -> float | None:
    """Pearson χ² of visitors per variant against the normalised weights; None without visitors."""
    total = sum(observed)
    if total == 0 or len(observed) < 2:
        return None
    weight_total = sum(weights)
    expected = [total * w / weight_total for w in weights]
    return float(scipy_stats.chisquare(observed, expected).pvalue)
