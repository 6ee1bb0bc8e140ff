"""Sequential mode: always-valid p-values and confidence sequences (normal-mixture mSPRT).

For the difference ``Δ = mean_t - mean_c`` estimated by ``d`` with variance
``V = σ_c²/n_c + σ_t²/n_t``, the mixture sequential probability ratio test with a
``N(0, τ²)`` mixture over Δ has the likelihood ratio (Johari, Koomen, Pekelis, Walsh, "Always
Valid Inference: Continuous Monitoring of A/B Tests", Operations Research 2022, eq. (11);
Robbins 1970)::

    Λ = sqrt(V / (V + τ²)) · exp(τ² d² / (2 V (V + τ²)))

Under the null, Λ is a non-negative martingale with mean 1, so by Ville's inequality
``P(∃n: Λ_n ≥ 1/α) ≤ α``: ``p = min(1, 1/Λ)`` is an always-valid p-value — it may be read
after every batch and acted on at any time. Inverting the test gives the confidence sequence
(Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence
sequences", Annals of Statistics 2021, eq. (14), the two-sided normal mixture)::

    d ± sqrt( V (V + τ²) / τ² · (2 log(1/α) + log((V + τ²) / V)) )

The p-value reported at a look is the one of that look (``1/Λ_n``); the running minimum
across looks is also valid and the service keeps no history, so it reports the former, which
is conservative. ``τ²`` is chosen so that the sequence is tightest at the planned sample size
(:func:`mixture_variance`). Variances are plug-in estimates, as in Optimizely's Stats Engine.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize

from control_plane.abtesting.statistics import Comparison

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray


def mixture_variance(variance_at_target: float, alpha: float = 0.05) -> float:
    """The τ² that makes the confidence sequence narrowest when ``V`` equals the target.

    The half-width² is ``V (1 + r)/r · (2 log(1/α) + log(1 + r))`` with ``r = τ²/V``;
    minimised over r once (r ≈ 8.2 at α = 0.05).

    Raises:
        ValueError: When the variance is not positive or alpha is outside (0, 1).

    >>> round(mixture_variance(1.0, 0.05), 1)
    8.2
    """
    if variance_at_target <= 0 or not 0 < alpha < 1:
        raise ValueError("variance must be > 0 and alpha in (0, 1)")
    log_term = 2 * math.log(1 / alpha)

    def width(r: float) -> float:
        return (1 + 1 / r) * (log_term + math.log1p(r))

    best = optimize.minimize_scalar(width, bounds=(1e-3, 1e4), method="bounded")
    return float(best.x) * variance_at_target


def always_valid_pvalues(
    diff: ArrayLike, variance: ArrayLike, tau2: ArrayLike
) -> NDArray[np.float64]:
    """``min(1, 1/Λ)`` of the normal-mixture SPRT (vectorised).

    >>> float(always_valid_pvalues(0.0, 0.01, 0.08))
    1.0
    >>> bool(always_valid_pvalues(0.5, 0.01, 0.08) < 0.001)
    True
    """
    d, v, t2 = (np.asarray(a, dtype=np.float64) for a in (diff, variance, tau2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lr = 0.5 * np.log(v / (v + t2)) + t2 * d**2 / (2 * v * (v + t2))
        p = np.exp(-np.nan_to_num(log_lr, nan=0.0))
    return np.asarray(np.where(v > 0, np.minimum(p, 1.0), 1.0), dtype=np.float64)


def confidence_half_width(variance: float, tau2: float, alpha: float) -> float:
    """Half-width of the normal-mixture confidence sequence at this variance.

    >>> round(confidence_half_width(0.01, 0.08, 0.05), 3)
    0.304
    """
    if variance <= 0:
        return math.inf
    factor = variance * (variance + tau2) / tau2
    return math.sqrt(factor * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance)))


def sequential_comparison(fixed: Comparison, tau2: float) -> Comparison:
    """Replace the fixed-horizon p-value and intervals of ``fixed`` by always-valid ones.

    The relative interval is the delta-method one widened by the same factor as the absolute
    one (both are normal approximations of the same estimate).

    >>> from control_plane.abtesting.statistics import compare_rates
    >>> fixed = compare_rates(1000, 10000, 1100, 10000)
    >>> seq = sequential_comparison(fixed, mixture_variance(2 * 0.1 * 0.9 / 10000))
    >>> seq.p_value > fixed.p_value, seq.absolute_ci[0] < fixed.absolute_ci[0]
    (True, True)
    """
    half_fixed = (fixed.absolute_ci[1] - fixed.absolute_ci[0]) / 2
    se = fixed.absolute_lift / fixed.statistic if fixed.statistic else half_fixed / 1.96
    variance = se**2
    half = confidence_half_width(variance, tau2, fixed.alpha)
    p_value = float(always_valid_pvalues(fixed.absolute_lift, variance, tau2))
    relative_ci = fixed.relative_ci
    if relative_ci is not None and fixed.relative_lift is not None and half_fixed > 0:
        scale = half / half_fixed
        mid = fixed.relative_lift
        relative_ci = (mid - (mid - relative_ci[0]) * scale, mid + (relative_ci[1] - mid) * scale)
    lift = fixed.absolute_lift
    return Comparison(
        control=fixed.control,
        treatment=fixed.treatment,
        n_control=fixed.n_control,
        n_treatment=fixed.n_treatment,
        absolute_lift=lift,
        absolute_ci=(lift - half, lift + half),
        relative_lift=fixed.relative_lift,
        relative_ci=relative_ci,
        statistic=fixed.statistic,
        p_value=p_value,
        alpha=fixed.alpha,
    )
