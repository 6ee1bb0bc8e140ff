"""Drift statistics on binned counts, computed as Evidently 0.7 computes them (pure, no I/O).

Each function mirrors one of Evidently's stattests (``evidently.legacy.calculations.
stattests``) on the data a sketch keeps; docs/drift.md states where a sketch makes one an
approximation.

* KS: the largest gap between the two empirical CDFs. With exact reference edges (every
  reference value an edge) and current values off those points, the gap is exact; the
  p-value is scipy's ``ks_2samp`` (exact up to 10,000 values a side, else Smirnov's
  asymptotic ``kstwo``), computed on a sample rebuilt from the bins, which has the same gap.
* chi-square: ``scipy.stats.chisquare`` of the current counts against the reference counts
  scaled to the current size; the z-test: two proportions, pooled variance, two-sided.
* normed Wasserstein: the area between the CDFs (exact per bin from the counts and value
  sums unless the CDFs cross inside a bin), divided by ``max(std_ref, 0.001)``.
* Jensen-Shannon: ``scipy.spatial.distance.jensenshannon`` (natural log) of the two
  histograms; PSI: ``sum((r - c) * ln(r / c))`` with Evidently's zero filling.

>>> import numpy as np
>>> r, c = np.array([0, 30, 30, 40, 0]), np.array([10, 30, 30, 20, 10])
>>> round(ks_test(r, c, reference_on_edges=False).statistic, 2)
0.1
>>> round(chi_square_test(np.array([50, 50]), np.array([70, 30])).p_value, 5)
6e-05
>>> round(jensen_shannon(np.array([1, 1]), np.array([1, 3])), 4)
0.1839
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats
from scipy.spatial import distance

KS_EXACT_MAX = 10_000
"""scipy's ``ks_2samp(method="auto")`` is exact while both samples are at most this large."""


class TestResult(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    p_value: float


def _cdf(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return np.cumsum(counts) / total if total else np.zeros(len(counts))


def ks_test(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    reference_on_edges: bool,
    current_on_edges: np.ndarray | None = None,
) -> TestResult:
    """Two-sample KS test on counts per bin (two-sided), as ``scipy.stats.ks_2samp``.

    Args:
        ref: reference counts per bin; cur: current counts on the same bins.
        reference_on_edges: every reference value is its bin's left edge (exact profile).
        current_on_edges: per bin, the current values on its left edge (the others lie
            inside the bin); ``None``: all inside.
    """
    on = np.zeros(len(cur)) if current_on_edges is None else current_on_edges.astype(np.float64)
    n, m = round(float(ref.sum())), round(float(cur.sum()))
    if max(n, m) <= KS_EXACT_MAX:
        # Same gap as the bins: a value at 2i (bin i's left edge) or 2i + 1 (inside bin i).
        at = np.arange(len(ref)) * 2.0
        r_pos = np.repeat(at if reference_on_edges else at + 1, np.rint(ref).astype(np.int64))
        inside = np.rint(cur - on).astype(np.int64)
        c_pos = np.concatenate(
            [np.repeat(at, np.rint(on).astype(np.int64)), np.repeat(at + 1, inside)]
        )
        result = stats.ks_2samp(r_pos, c_pos)
        return TestResult(float(result.statistic), float(result.pvalue))
    big_r, big_c = _cdf(ref), _cdf(cur)
    gap = np.abs(big_r - big_c)
    if reference_on_edges:
        after_edge = np.concatenate([[0.0], big_c[:-1]]) + on / m
        gap = np.maximum(gap, np.abs(big_r - after_edge))
    d = float(gap.max())
    en = m * n / (m + n)
    return TestResult(d, float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0)))


def chi_square_test(ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Chi-square test of current counts against reference counts (aligned categories).

    A category the reference never had makes the statistic infinite and the p-value 0, as
    in scipy and Evidently.
    """
    keep = (ref > 0) | (cur > 0)
    ref, cur = ref[keep].astype(np.float64), cur[keep].astype(np.float64)
    expected = ref * (cur.sum() / ref.sum())
    if ((expected == 0) & (cur > 0)).any():
        return TestResult(math.inf, 0.0)
    result = stats.chisquare(cur, expected)
    return TestResult(float(result.statistic), float(result.pvalue))


def z_test(ref: np.ndarray, cur: np.ndarray) -> TestResult:
    """Two-proportion z-test on two-category counts ``[first, second]`` (two-sided).

    >>> round(z_test(np.array([50, 50]), np.array([60, 40])).p_value, 4)
    0.1552
    """
    n1, n2 = float(ref.sum()), float(cur.sum())
    p1, p2 = float(ref[0]) / n1, float(cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return TestResult(0.0, 1.0)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return TestResult(z, float(2 * (1 - stats.norm.cdf(abs(z)))))


def wasserstein(
    lo: np.ndarray,
    hi: np.ndarray,
    ref: tuple[np.ndarray, np.ndarray],
    cur: tuple[np.ndarray, np.ndarray],
    *,
    reference_on_edges: bool,
    current_on_edges: np.ndarray | None = None,
) -> float:
    """First Wasserstein distance between two binned samples (bin ``i`` spans ``[lo, hi]``).

    ``ref`` and ``cur`` are (counts, value sums) per bin. Per bin the integral of
    ``F_ref - F_cur`` is exact from the counts and sums; its absolute value is the area
    unless the difference changes sign inside the bin, where a linear crossing is assumed.

    >>> lo, hi = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    >>> wasserstein(lo, hi, (np.array([2.0, 0.0]), np.array([1.0, 0.0])),
    ...             (np.array([0.0, 2.0]), np.array([0.0, 3.0])), reference_on_edges=False)
    1.0
    """
    (rc, rs), (cc, cs) = ref, cur
    n, m = rc.sum(), cc.sum()
    r_after, c_after = np.cumsum(rc) / n, np.cumsum(cc) / m
    r_before, c_before = r_after - rc / n, c_after - cc / m
    width = hi - lo
    # integral of F over a bin = F_before * width + (count * hi - sum) / N
    signed = (r_before - c_before) * width + (rc * hi - rs) / n - (cc * hi - cs) / m
    on = 0.0 if current_on_edges is None else current_on_edges / m
    g_lo = (r_after if reference_on_edges else r_before) - (c_before + on)
    g_hi = r_after - c_after
    crossing = (g_lo * g_hi) < 0
    spans = np.abs(g_lo) + np.abs(g_hi)
    linear = width * (g_lo**2 + g_hi**2) / (2 * np.where(spans > 0, spans, 1.0))
    return float(np.where(crossing, np.maximum(np.abs(signed), linear), np.abs(signed)).sum())


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) of two histograms on the same bins."""
    return float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """Population stability index with Evidently's filling of empty bins.

    >>> round(psi(np.array([50, 50]), np.array([70, 30])), 4)
    0.1695
    """
    r, c = _fill_zeros(ref / ref.sum()), _fill_zeros(cur / cur.sum())
    return float(np.sum((r - c) * np.log(r / c)))


def _fill_zeros(shares: np.ndarray) -> np.ndarray:
    present = shares[shares != 0]
    smallest = float(present.min())
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, fill, shares)
