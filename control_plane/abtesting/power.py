"""Test planning: the sample size per variant and the expected duration.

Rates (two-sided two-proportion z-test; Fleiss, Levin, Paik, "Statistical Methods for Rates
and Proportions", 3rd ed., eq. 4.14 without continuity correction)::

    n = (z_{1-α/2} sqrt(2 p̄ (1 - p̄)) + z_{1-β} sqrt(p₁(1 - p₁) + p₂(1 - p₂)))² / δ²

Means (two-sided test, equal variance σ² in both arms)::

    n = 2 σ² (z_{1-α/2} + z_{1-β})² / δ²

with δ the minimum detectable effect (absolute, or ``relative × baseline``). The expected
duration is the time until the arm with the smallest weight reaches n at the given traffic.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec
from scipy import stats

if TYPE_CHECKING:
    from collections.abc import Sequence


class TestPlan(msgspec.Struct, kw_only=True, frozen=True):
    """The planned size of a test."""

    __test__ = False  # not a pytest test class

    n_per_variant: int
    n_total: int
    absolute_effect: float
    alpha: float
    power: float
    expected_days: float | None


def plan_test(
    *,
    baseline: float,
    minimum_detectable_effect: float,
    variance: float | None = None,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    daily_traffic: float | None = None,
    weights: Sequence[float] = (0.5, 0.5),
) -> TestPlan:
    """Sample size per variant for a rate (``variance`` None) or a mean, and the duration.

    Args:
        baseline: The control's rate (0..1) or mean.
        minimum_detectable_effect: Smallest difference worth detecting (> 0), absolute or, with
            ``relative``, as a fraction of the baseline.
        variance: Per-unit variance of the metric for means; None for rates.
        relative: Whether the effect is relative to the baseline.
        alpha: Two-sided significance level.
        power: Probability of detecting the effect when it is there.
        daily_traffic: Units per day entering the test (all arms); None: no duration.
        weights: The traffic split across variants.

    Raises:
        ValueError: When an argument is out of range.

    >>> plan_test(baseline=0.10, minimum_detectable_effect=0.02).n_per_variant
    3841
    >>> plan = plan_test(baseline=0.10, minimum_detectable_effect=0.1, relative=True,
    ...                  daily_traffic=2000)
    >>> plan.n_per_variant, round(plan.expected_days, 1)
    (14751, 14.8)
    >>> plan_test(baseline=50.0, minimum_detectable_effect=1.0, variance=100.0).n_per_variant
    1570
    """
    _check(alpha, power, minimum_detectable_effect, weights)
    delta = minimum_detectable_effect * (abs(baseline) if relative else 1.0)
    if delta <= 0:
        raise ValueError("the effect is zero: relative effects need a non-zero baseline")
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    if variance is None:
        p1, p2 = baseline, baseline + delta
        if not (0 < p1 < 1 and 0 < p2 < 1):
            raise ValueError("rates and rate + effect must lie strictly between 0 and 1")
        p_bar = (p1 + p2) / 2
        root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(
            p1 * (1 - p1) + p2 * (1 - p2)
        )
        n = math.ceil(root**2 / delta**2)
    else:
        if variance <= 0:
            raise ValueError("variance must be > 0")
        n = math.ceil(2 * variance * (z_a + z_b) ** 2 / delta**2)
    days = None
    if daily_traffic is not None:
        if daily_traffic <= 0:
            raise ValueError("daily_traffic must be > 0")
        smallest = min(w for w in weights if w > 0) / sum(weights)
        days = n / (daily_traffic * smallest)
        if not math.isfinite(days):  # float arithmetic overflows quietly, unlike math.ceil
            raise OverflowError("the expected duration is beyond a float's range")
    return TestPlan(
        n_per_variant=n,
        n_total=n * sum(1 for w in weights if w > 0),
        absolute_effect=delta,
        alpha=alpha,
        power=power,
        expected_days=days,
    )


def _check(alpha: float, power: float, effect: float, weights: Sequence[float]) -> None:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must lie in (0, 1)")
    if effect <= 0:
        raise ValueError("minimum_detectable_effect must be > 0")
    if len(weights) < 2 or min(weights) < 0 or sum(1 for w in weights if w > 0) < 2:
        raise ValueError("weights need at least two positive arms and no negative weight")


def days_to_sample(units: Sequence[int], minimum: int, elapsed_days: float) -> float | None:
    """Days until every arm reaches ``minimum`` units at the traffic seen so far.

    Each arm keeps its own observed rate (``units / elapsed_days``), so the slowest arm
    decides. 0 when every arm is there; None before any arm has a unit or time has passed.

    >>> days_to_sample([500, 250], 1000, elapsed_days=1.0)
    3.0
    >>> days_to_sample([1200, 1000], 1000, elapsed_days=2.0)
    0.0
    """
    if all(u >= minimum for u in units) and units:
        return 0.0
    if elapsed_days <= 0 or not units or min(units) <= 0:
        return None
    return max((minimum - u) / (u / elapsed_days) for u in units if u < minimum)
