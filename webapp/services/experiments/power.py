"""Power, sample size and minimum detectable effect (SPEC §10.4), by GrowthBook's power formula.

For a metric with baseline mean μ and per-visitor variance σ² (a proportion: μ(1−μ); a ratio: the delta-method
variance), a relative effect Δ (the MDE), z = Φ⁻¹(1−α/2) and N visitors in each arm:

    SE² = σ²/(μ²N) + σ²·(μ(1+Δ))²/(μ⁴N)          (the delta-method variance of the relative lift, as the engines use)
    power(N) = 1 − Φ(z − Δ/SE) + Φ(−z − Δ/SE)

`sequential` widens SE to SE·√(n′D)/z with n′ = 2N and D the confidence sequence's factor (stats.sequential_width_factor);
`bayesian` plans as `fixed`. Pure functions: no database, no Flask. docs/statistics.md says what each number means.
"""
from __future__ import annotations

import math

from scipy.special import ndtr, ndtri  # Φ and Φ⁻¹: what scipy.stats.norm.cdf/.ppf compute, without their overhead

from webapp.services.experiments.stats import ENGINES, sequential_width_factor

MIN_VISITORS_PER_ARM = 2
MAX_VISITORS_PER_ARM = 10 ** 12  # beyond this no plan is "reachable": visitors_per_arm answers None


def _check(mean: float, variance: float, alpha: float, engine: str, sequential_tuning: int) -> None:
    if not (math.isfinite(mean) and mean != 0):
        raise ValueError(f"mean must be a non-zero number, not {mean!r}")
    if not (math.isfinite(variance) and variance > 0):
        raise ValueError(f"variance must be a positive number, not {variance!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if not sequential_tuning > 0:
        raise ValueError(f"sequential_tuning must be positive, not {sequential_tuning!r}")


def _check_power(target_power: float) -> None:
    if not 0 < target_power < 1:
        raise ValueError(f"power must be between 0 and 1, not {target_power!r}")


def power(mean: float, variance: float, mde: float, n_per_arm: float, alpha: float = 0.05,
          engine: str = "fixed", sequential_tuning: int = 5000) -> float:
    """The probability that a two-sided test at level α finds a true relative effect of `mde` significant with
    `n_per_arm` visitors in each arm (SPEC §10.4)."""
    _check(mean, variance, alpha, engine, sequential_tuning)
    if not (math.isfinite(mde) and mde != 0):
        raise ValueError(f"mde must be a non-zero number, not {mde!r}")
    if not n_per_arm > 0:
        raise ValueError(f"n_per_arm must be positive, not {n_per_arm!r}")
    return _power(mean, variance, mde, n_per_arm, alpha, engine, sequential_tuning, float(ndtri(1 - alpha / 2)))


def _power(mean: float, variance: float, mde: float, n_per_arm: float, alpha: float, engine: str,
           sequential_tuning: int, z: float) -> float:
    std_error = math.sqrt(variance / (mean ** 2 * n_per_arm)
                          + variance * (mean * (1 + mde)) ** 2 / (mean ** 4 * n_per_arm))
    if engine == "sequential":
        n_total = 2 * n_per_arm
        std_error = std_error * math.sqrt(n_total * sequential_width_factor(n_total, alpha, sequential_tuning)) / z
    shift = mde / std_error
    return float(1 - ndtr(z - shift) + ndtr(-z - shift))


def visitors_per_arm(mean: float, variance: float, mde: float, target_power: float, alpha: float = 0.05,
                     engine: str = "fixed", sequential_tuning: int = 5000) -> int | None:
    """The smallest integer N ≥ 2 with power(N) ≥ `target_power`, exactly (power grows with N for every engine: an
    exponential search brackets it, a bisection on integers finds it, so power(N − 1) < target ≤ power(N)); None when
    no N up to 10¹² reaches it."""
    _check_power(target_power)
    power(mean, variance, mde, MIN_VISITORS_PER_ARM, alpha, engine, sequential_tuning)  # validates the inputs
    z = float(ndtri(1 - alpha / 2))

    def enough(n: int) -> bool:
        return _power(mean, variance, mde, n, alpha, engine, sequential_tuning, z) >= target_power

    low, high = MIN_VISITORS_PER_ARM - 1, MIN_VISITORS_PER_ARM  # invariant: not enough(low) (or low < 2), enough(high)
    while not enough(high):
        if high >= MAX_VISITORS_PER_ARM:
            return None
        low, high = high, min(high * 2, MAX_VISITORS_PER_ARM)
    while high - low > 1:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle
    return high


def minimum_detectable_effect(mean: float, variance: float, n_per_arm: float, target_power: float,
                              alpha: float = 0.05) -> float | None:
    """The smallest relative effect that `n_per_arm` visitors an arm detect with `target_power` (fixed formula,
    SPEC §10.4): with q = z − Φ⁻¹(1−power) and a = 1 − q²σ²/(Nμ²), the larger root μ_B of
    a·μ_B² − 2μ·μ_B + (μ² − q²σ²/N) = 0, as μ_B/μ − 1. None when N ≤ q²σ²/μ² (no effect is detectable)."""
    _check(mean, variance, alpha, "fixed", 1)
    _check_power(target_power)
    if not n_per_arm > 0:
        raise ValueError(f"n_per_arm must be positive, not {n_per_arm!r}")
    q = float(ndtri(1 - alpha / 2) - ndtri(1 - target_power))
    spread = q ** 2 * variance / n_per_arm  # q²σ²/N
    if n_per_arm <= q ** 2 * variance / mean ** 2:
        return None
    a = 1 - spread / mean ** 2
    mean_b = (mean + math.sqrt(mean ** 2 - a * (mean ** 2 - spread))) / a
    return float(mean_b / mean - 1)


def visitors_needed(per_arm: int, weights: list[int]) -> int:
    """Visitors in all for the smallest arm to get `per_arm`: ⌈N / s⌉ with s = min(weights)/Σweights, in integers."""
    if not weights or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in weights):
        raise ValueError(f"weights must be positive integers, not {weights!r}")
    if isinstance(per_arm, bool) or not isinstance(per_arm, int) or per_arm < 0:
        raise ValueError(f"per_arm must be a non-negative integer, not {per_arm!r}")
    return -(-per_arm * sum(weights) // min(weights))
