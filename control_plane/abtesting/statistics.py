"""Fixed-horizon comparisons of a treatment against a control: pure functions of counts.

* Rates (conversion, accuracy): the two-proportion z-test. The test statistic uses the pooled
  proportion (the null hypothesis says both rates are equal); the confidence interval on the
  difference uses the unpooled standard error, as GrowthBook, Statsig and Eppo do.
* Means (numeric outcomes, latency): Welch's t-test with the Welch–Satterthwaite degrees of
  freedom; the interval on the difference uses the same t quantile.
* Relative lift ``mean_t / mean_c - 1`` gets a delta-method interval:
  ``Var(m_t / m_c) ≈ se_t² / m_c² + m_t² se_c² / m_c⁴`` (Deng et al., "Applying the Delta
  Method in Metric Analytics", KDD 2018).
* Sample-ratio mismatch: Pearson's chi-square goodness of fit of the observed assignment counts
  against the configured weights; p < 0.001 flags a broken split (Fabijan et al., KDD 2019).
* Benjamini–Hochberg step-up adjusted p-values across secondary metrics (JRSS B, 1995).

The vectorised cores (``*_pvalues``) take numpy arrays so that the simulation tests run
thousands of experiments through the very code the service uses.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec
import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

SRM_THRESHOLD = 0.001
"""A sample-ratio-mismatch p-value below this blocks every verdict."""


class Comparison(msgspec.Struct, kw_only=True, frozen=True):
    """Treatment against control on one metric (estimates, lift with intervals, p-value)."""

    control: float
    treatment: float
    n_control: int
    n_treatment: int
    absolute_lift: float
    absolute_ci: tuple[float, float]
    relative_lift: float | None
    relative_ci: tuple[float, float] | None
    statistic: float
    p_value: float
    alpha: float

    @property
    def significant(self) -> bool:
        """Whether the difference is significant at ``alpha``."""
        return self.p_value < self.alpha


class SampleRatio(msgspec.Struct, kw_only=True, frozen=True):
    """The sample-ratio-mismatch check of one test."""

    observed: tuple[int, ...]
    expected_shares: tuple[float, ...]
    chi_square: float
    p_value: float
    mismatch: bool


def rate_pvalues(
    x_c: ArrayLike, n_c: ArrayLike, x_t: ArrayLike, n_t: ArrayLike
) -> NDArray[np.float64]:
    """Two-sided p-values of the pooled two-proportion z-test (vectorised).

    >>> rate_pvalues([100], [1000], [100], [1000]).round(3).tolist()
    [1.0]
    >>> bool(rate_pvalues(100, 1000, 140, 1000) < 0.01)
    True
    """
    xc, nc, xt, nt = (np.asarray(v, dtype=np.float64) for v in (x_c, n_c, x_t, n_t))
    pooled = (xc + xt) / (nc + nt)
    se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt))
    diff = xt / nt - xc / nc
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)
    return np.asarray(2.0 * stats.norm.sf(np.abs(z)), dtype=np.float64)


def welch_pvalues(
    mean_c: ArrayLike,
    var_c: ArrayLike,
    n_c: ArrayLike,
    mean_t: ArrayLike,
    var_t: ArrayLike,
    n_t: ArrayLike,
) -> NDArray[np.float64]:
    """Two-sided p-values of Welch's t-test from summary statistics (vectorised).

    >>> float(welch_pvalues(10.0, 4.0, 50, 10.0, 9.0, 60))
    1.0
    >>> bool(welch_pvalues(10.0, 4.0, 500, 10.5, 4.0, 500) < 0.001)
    True
    """
    mc, vc, nc, mt, vt, nt = (
        np.asarray(v, dtype=np.float64) for v in (mean_c, var_c, n_c, mean_t, var_t, n_t)
    )
    t, df = _welch(mc, vc, nc, mt, vt, nt)
    return np.asarray(2.0 * stats.t.sf(np.abs(t), df), dtype=np.float64)


def _welch(
    mc: NDArray[np.float64],
    vc: NDArray[np.float64],
    nc: NDArray[np.float64],
    mt: NDArray[np.float64],
    vt: NDArray[np.float64],
    nt: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a, b = vc / nc, vt / nt
    se2 = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(se2 > 0, se2, 1.0)
        t = np.where(se2 > 0, (mt - mc) / np.sqrt(safe), 0.0)
        # Welch-Satterthwaite, se2**2 / (a**2 / (nc - 1) + b**2 / (nt - 1)), on the shares of
        # se2: the squares of the variances themselves underflowed for values near 1e-90
        # (and overflowed near 1e100), which changed the p-value
        ra, rb = a / safe, b / safe
        df = np.where(se2 > 0, 1.0 / (ra**2 / (nc - 1) + rb**2 / (nt - 1)), 1.0)
    return t, np.maximum(np.nan_to_num(df, nan=1.0), 1.0)


def compare_rates(x_c: int, n_c: int, x_t: int, n_t: int, alpha: float = 0.05) -> Comparison:
    """Two-proportion z-test with intervals on the absolute and relative lift.

    Args:
        x_c: Successes in the control.
        n_c: Units in the control (> 0).
        x_t: Successes in the treatment.
        n_t: Units in the treatment (> 0).
        alpha: Two-sided significance level; intervals are at ``1 - alpha``.

    Raises:
        ValueError: When a count is negative, successes exceed units or a group is empty.

    >>> c = compare_rates(1000, 10000, 1100, 10000)
    >>> round(c.absolute_lift, 3), round(c.relative_lift, 3), c.significant
    (0.01, 0.1, True)
    >>> [round(v, 4) for v in c.absolute_ci]
    [0.0015, 0.0185]
    """
    for x, n in ((x_c, n_c), (x_t, n_t)):
        if n <= 0 or x < 0 or x > n:
            raise ValueError(f"invalid counts: {x} successes of {n}")
    pc, pt = x_c / n_c, x_t / n_t
    se_c, se_t = math.sqrt(pc * (1 - pc) / n_c), math.sqrt(pt * (1 - pt) / n_t)
    p_value = float(rate_pvalues(x_c, n_c, x_t, n_t))
    return _comparison(pc, se_c, n_c, pt, se_t, n_t, stats.norm.ppf(1 - alpha / 2), p_value, alpha)


def compare_means(
    mean_c: float,
    var_c: float,
    n_c: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    alpha: float = 0.05,
) -> Comparison:
    """Welch's t-test with intervals on the absolute and relative lift.

    Args:
        mean_c: Control sample mean.
        var_c: Control sample variance (ddof=1).
        n_c: Control units (≥ 2).
        mean_t: Treatment sample mean.
        var_t: Treatment sample variance (ddof=1).
        n_t: Treatment units (≥ 2).
        alpha: Two-sided significance level.

    Raises:
        ValueError: When a group has fewer than 2 units or a negative variance.

    >>> rng = np.random.default_rng(7)
    >>> a, b = rng.normal(10, 2, 400), rng.normal(10.5, 2, 400)
    >>> c = compare_means(a.mean(), a.var(ddof=1), 400, b.mean(), b.var(ddof=1), 400)
    >>> c.significant, c.absolute_ci[0] > 0
    (True, True)
    """
    if n_c < 2 or n_t < 2 or var_c < 0 or var_t < 0:
        raise ValueError("each group needs at least 2 units and a non-negative variance")
    arrays = (np.float64(v) for v in (mean_c, var_c, n_c, mean_t, var_t, n_t))
    t, df = _welch(*arrays)  # type: ignore[arg-type]
    quantile = float(stats.t.ppf(1 - alpha / 2, df))
    p_value = float(2.0 * stats.t.sf(abs(float(t)), df))
    se_c, se_t = math.sqrt(var_c / n_c), math.sqrt(var_t / n_t)
    return _comparison(mean_c, se_c, n_c, mean_t, se_t, n_t, quantile, p_value, alpha)


def _comparison(
    mc: float,
    se_c: float,
    n_c: int,
    mt: float,
    se_t: float,
    n_t: int,
    quantile: float,
    p_value: float,
    alpha: float,
) -> Comparison:
    diff = mt - mc
    se = math.hypot(se_c, se_t)
    relative: float | None = None
    relative_ci: tuple[float, float] | None = None
    if mc != 0:
        # Delta method for the ratio of two independent means, without powers of the means:
        # se_t**2 / mc**2 + mt**2 * se_c**2 / mc**4 underflowed to a division by zero for means
        # near 1e-90 and overflowed for means near 1e200 (a 500 on every report).
        ratio = mt / mc
        se_ratio = math.hypot(se_t / mc, ratio * (se_c / mc))
        low, high = ratio - 1.0 - quantile * se_ratio, ratio - 1.0 + quantile * se_ratio
        if math.isfinite(low) and math.isfinite(high):  # else: no relative figure to give
            relative, relative_ci = ratio - 1.0, (low, high)
    return Comparison(
        control=float(mc),
        treatment=float(mt),
        n_control=int(n_c),
        n_treatment=int(n_t),
        absolute_lift=float(diff),
        absolute_ci=(float(diff - quantile * se), float(diff + quantile * se)),
        relative_lift=relative,
        relative_ci=relative_ci,
        statistic=float(diff / se) if se > 0 else 0.0,
        p_value=p_value,
        alpha=alpha,
    )


def sample_ratio_mismatch(
    observed: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SampleRatio:
    """Pearson chi-square of the observed assignment counts against the configured weights.

    Raises:
        ValueError: When the lengths differ, a weight is negative or all are zero.

    >>> sample_ratio_mismatch([5500, 4500], [0.5, 0.5]).mismatch
    True
    >>> sample_ratio_mismatch([5020, 4980], [0.5, 0.5]).mismatch
    False
    """
    if len(observed) != len(weights) or min(weights, default=0) < 0 or sum(weights) <= 0:
        raise ValueError("observed counts and weights must pair up, weights ≥ 0, sum > 0")
    total = sum(observed)
    shares = tuple(w / sum(weights) for w in weights)
    kept = [(o, s) for o, s in zip(observed, shares, strict=True) if s > 0]
    if total == 0 or len(kept) < 2:
        return SampleRatio(
            observed=tuple(observed),
            expected_shares=shares,
            chi_square=0.0,
            p_value=1.0,
            mismatch=False,
        )
    chi2 = sum((o - total * s) ** 2 / (total * s) for o, s in kept)
    # Units assigned to a zero-weight arm are a mismatch by themselves.
    stray = sum(o for o, s in zip(observed, shares, strict=True) if s == 0)
    p_value = 0.0 if stray else float(stats.chi2.sf(chi2, len(kept) - 1))
    return SampleRatio(
        observed=tuple(observed),
        expected_shares=shares,
        chi_square=float(chi2),
        p_value=p_value,
        mismatch=p_value < threshold,
    )


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the input order.

    Reject hypothesis i at false-discovery rate q when its adjusted value is ≤ q.

    >>> [round(q, 3) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.20])]
    [0.04, 0.053, 0.053, 0.2]
    """
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted
