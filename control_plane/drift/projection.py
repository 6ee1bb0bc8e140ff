"""Histograms of a reference profile and a sketch on common bins (pure, no I/O).

Both sides become *interval masses*: a count spread uniformly over ``[lo, hi)`` (a point
mass when ``lo == hi``). :func:`spread` re-bins interval masses onto other edges by the mass
and first moment that fall on each side of every edge. It serves two purposes:

* a sketch counted on other bins (another reference, or the log-bucket histogram of a server
  without reference) is brought onto the profile's bins;
* Evidently's Jensen-Shannon/PSI bin continuous columns with Sturges' rule over the combined
  range; both sides are re-binned onto those edges.

>>> import numpy as np
>>> lo, hi, c = np.array([0.0, 2.0]), np.array([2.0, 2.0]), np.array([4.0, 1.0])
>>> counts, sums = spread(lo, hi, c, np.array([1.0, 3.0]))
>>> counts.tolist(), sums.tolist()
([2.0, 3.0, 0.0], [1.0, 5.0, 0.0])
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from modelyard.binning import log_bucket_bounds
from modelyard.errors import InvalidArgument
from modelyard.sketches import NumericProfile, NumericSketch


class Intervals(NamedTuple):
    """Masses spread uniformly over ``[lo, hi)`` (a point when ``lo == hi``)."""

    lo: np.ndarray
    hi: np.ndarray
    counts: np.ndarray


def spread(
    lo: np.ndarray, hi: np.ndarray, counts: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Counts and value sums of interval masses on ``edges`` (``len(edges) + 1`` bins)."""
    e = edges[np.newaxis, :]
    lo_, hi_, c = lo[:, np.newaxis], hi[:, np.newaxis], counts[:, np.newaxis]
    width = hi_ - lo_
    point = width <= 0
    safe = np.where(point, 1.0, width)
    upto = np.clip(e, lo_, hi_)
    # Mass and first moment below each edge; a point mass at p lies below e when p < e.
    below = np.where(point, (lo_ < e) * 1.0, (upto - lo_) / safe)
    moment = np.where(point, (lo_ < e) * lo_, (upto**2 - lo_**2) / (2 * safe))
    mass_below = (c * below).sum(axis=0)
    first_below = (c * moment).sum(axis=0)
    total, first = (
        float(counts.sum()),
        float((counts * np.where(point[:, 0], lo, (lo + hi) / 2)).sum()),
    )
    mass = np.diff(np.concatenate([[0.0], mass_below, [total]]))
    sums = np.diff(np.concatenate([[0.0], first_below, [first]]))
    return np.maximum(mass, 0.0), sums


def profile_intervals(p: NumericProfile) -> Intervals:
    """The reference as interval masses (point masses at the edges when exact)."""
    edges = np.asarray(p.edges)
    counts = np.asarray(p.counts, dtype=np.float64)
    if p.exact:
        return Intervals(edges, edges, counts[1:])
    lo = np.concatenate([edges[:-1], edges[-1:]])
    hi = np.concatenate([edges[1:], edges[-1:]])
    return _centred(lo, hi, counts[1:], np.asarray(p.sums)[1:])


def _centred(lo: np.ndarray, hi: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> Intervals:
    """Each bin's mass spread evenly over the bin, or at its value when it holds one."""
    single = counts == 1
    value = np.clip(sums, lo, hi)
    return Intervals(np.where(single, value, lo), np.where(single, value, hi), counts)


def sketch_intervals(s: NumericSketch) -> Intervals:
    """A sketch's values as interval masses, bounded by its observed min and max."""
    if s.n == 0 or s.min is None or s.max is None:
        return Intervals(np.zeros(0), np.zeros(0), np.zeros(0))
    if s.histogram is not None:
        return _histogram_intervals(s)
    edges = np.asarray(s.edges)
    counts = np.asarray(s.counts, dtype=np.float64)
    lo = np.concatenate([[min(s.min, edges[0])], edges])
    hi = np.maximum(np.concatenate([edges, [max(s.max, edges[-1])]]), lo)
    if not (s.exact and s.on_edges):
        return _centred(lo, hi, counts, np.asarray(s.sums))
    # Values on a reference point are point masses there; the rest spread inside the bin.
    on = np.asarray(s.on_edges, dtype=np.float64)
    inside = _centred(lo, hi, counts - on, np.asarray(s.sums) - on * lo)
    return Intervals(
        np.concatenate([lo, inside.lo]),
        np.concatenate([lo, inside.hi]),
        np.concatenate([on, inside.counts]),
    )


def _histogram_intervals(s: NumericSketch) -> Intervals:
    h = s.histogram
    assert h is not None
    assert s.min is not None
    assert s.max is not None
    parts = [(0.0, 0.0, float(h.zeros))] if h.zeros else []
    for index, count in h.positive.items():
        low, high = log_bucket_bounds(index)
        parts.append((low, high, float(count)))
    for index, count in h.negative.items():
        low, high = log_bucket_bounds(index)
        parts.append((-high, -low, float(count)))
    lo = np.clip(np.array([x[0] for x in parts]), s.min, s.max)
    hi = np.clip(np.array([x[1] for x in parts]), s.min, s.max)
    return Intervals(lo, hi, np.array([x[2] for x in parts]))


def on_profile_bins(p: NumericProfile, s: NumericSketch) -> tuple[np.ndarray, np.ndarray]:
    """The sketch's counts and sums on the profile's bins (re-binned when not counted there).

    Raises:
        InvalidArgument: a sketch with values but neither bins nor histogram.
    """
    width = len(p.edges) + 1
    if s.n == 0:
        return np.zeros(width), np.zeros(width)
    if s.histogram is None and tuple(s.edges) == tuple(p.edges):
        return np.asarray(s.counts, dtype=np.float64), np.asarray(s.sums, dtype=np.float64)
    if s.histogram is None and not s.edges:
        raise InvalidArgument("a numeric sketch with values has neither bins nor histogram")
    iv = sketch_intervals(s)
    return spread(iv.lo, iv.hi, iv.counts, np.asarray(p.edges))


def sturges_edges(low: float, high: float, size: int) -> np.ndarray:
    """``numpy.histogram_bin_edges(combined, "sturges")`` from the range and size alone.

    >>> x = np.linspace(0.0, 1.0, 1000)
    >>> sturges_edges(0.0, 1.0, 1000).size, np.histogram_bin_edges(x, "sturges").size
    (12, 12)
    """
    if high <= low:
        return np.array([low - 0.5, low + 0.5])
    bins = math.ceil((high - low) / ((high - low) / (math.log2(size) + 1.0)))
    return np.linspace(low, high, bins + 1)


def histogram_on(iv: Intervals, edges: np.ndarray) -> np.ndarray:
    """``numpy.histogram`` counts of interval masses on ``edges`` (last bin closed)."""
    counts, _ = spread(iv.lo, iv.hi, iv.counts, edges)
    inner = counts[1:-1].copy()
    inner[-1] += counts[-1]  # values equal to the last edge belong to the last bin
    return inner
