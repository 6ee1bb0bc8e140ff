"""Vectorised binning for the drift sketches: numeric bins, log buckets and category keys.

Pure numpy, shared by both planes so that a value lands in the same bin whether the server
sketches it or the control plane profiles it (:mod:`modelyard.sketches`).

Bins of a numeric column with edges ``e_0 < e_1 < ... < e_k`` are half-open and the two ends
are open: bin 0 holds ``x < e_0``, bin ``i`` holds ``e_{i-1} <= x < e_i`` and bin ``k + 1``
holds ``x >= e_k``; so there are ``k + 2`` bins (``len(edges) + 1``).

>>> import numpy as np
>>> b = bin_numeric(np.array([0.5, 1.0, 1.5, 3.0, np.nan, np.inf]), np.array([1.0, 2.0]))
>>> b.counts.tolist(), b.sums.tolist(), b.n, b.missing, b.off_grid
([1, 2, 1], [0.5, 2.5, 3.0], 4, 2, 3)
>>> reference_edges(np.random.default_rng(0).normal(size=5000), bins=4, max_exact=100)[1]
False
>>> category_keys(np.array([1.0, 2.5, np.nan]))
(['1', '2.5'], 1)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from modelyard.models import MAX_MAGNITUDE

LOG_GAMMA = math.log(1.02)
"""Bucket ratio of the reference-free log histogram: values within 1 % of a bucket's middle."""

ZERO_BAND = 1e-12
"""Absolute values below this count as zero in the log histogram."""


TAIL_LEVELS = (0.001, 0.002, 0.005, 0.995, 0.998, 0.999)
"""Extra quantile levels of non-exact reference edges (finer outer bins)."""


class Binned(NamedTuple):
    """Counts and value sums of one column on given edges.

    Attributes:
        counts: values per bin (``len(edges) + 1`` bins, open ends included).
        sums: the sum of the values in each bin (for exact Wasserstein distances).
        n: finite values.
        missing: NaN, infinite or unparseable values (Evidently drops them too), and values
            of magnitude :data:`MAX_MAGNITUDE` or more.
        minimum: smallest finite value (NaN when ``n == 0``).
        maximum: largest finite value (NaN when ``n == 0``).
        total: sum of the finite values.
        off_grid: finite values not equal to an edge (meaningful when the edges are the
            reference's distinct values: a value the reference never had).
        on_edges: per bin, the values equal to its left edge (the rest lie inside the bin).
    """

    counts: np.ndarray
    sums: np.ndarray
    n: int
    missing: int
    minimum: float
    maximum: float
    total: float
    off_grid: int
    on_edges: np.ndarray


def finite_values(values: Any) -> tuple[np.ndarray, int]:
    """The finite float64 values of ``values`` and how many were missing (NaN/inf/None/text,
    and values of magnitude :data:`MAX_MAGNITUDE` or more).

    >>> finite_values([1, None, "x", 2.0, 1e300])
    (array([1., 2.]), 3)
    """
    array = np.asarray(values)
    if array.dtype.kind in "iufb":
        x = array.astype(np.float64, copy=False).ravel()
    else:
        x = np.array([_to_float(v) for v in array.ravel().tolist()], dtype=np.float64)
    finite = np.abs(x) < MAX_MAGNITUDE  # False for NaN and +-inf too
    if finite.all():
        return x, 0
    return x[finite], int(x.size - finite.sum())


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def bin_numeric(values: Any, edges: np.ndarray) -> Binned:
    """Count ``values`` on ``edges`` (see the module docstring for the bin layout).

    Values of a lower precision than the edges (FP32/FP16 tensors against a float64
    reference) are compared with the edges rounded to that precision, so a served 0.7f lands
    on the reference's 0.7 and not just below it.

    >>> edges = np.array([0.6, 0.7])
    >>> bin_numeric(np.array([0.7], dtype=np.float32), edges).counts.tolist()
    [0, 0, 1]
    """
    array = np.asarray(values)
    x, missing = finite_values(array)
    width = len(edges) + 1
    if x.size == 0:
        zeros = np.zeros(width, dtype=np.int64)
        return Binned(zeros, np.zeros(width), 0, missing, math.nan, math.nan, 0.0, 0, zeros)
    if array.dtype in (np.float32, np.float16):
        edges = edges.astype(array.dtype).astype(np.float64)
    idx = np.searchsorted(edges, x, side="right")
    counts = np.bincount(idx, minlength=width)
    sums = np.bincount(idx, weights=x, minlength=width)
    on_edge = (idx > 0) & (edges[np.maximum(idx - 1, 0)] == x)
    return Binned(
        counts=counts,
        sums=sums,
        n=int(x.size),
        missing=missing,
        minimum=float(x.min()),
        maximum=float(x.max()),
        total=float(x.sum()),
        off_grid=int(x.size - on_edge.sum()),
        on_edges=np.bincount(idx[on_edge], minlength=width),
    )


def reference_edges(values: np.ndarray, *, bins: int, max_exact: int) -> tuple[np.ndarray, bool]:
    """Bin edges for a reference column and whether they are exact.

    Exact edges are the column's distinct values (when it has at most ``max_exact``): every
    reference value then sits on the left edge of its own bin, which makes the KS statistic
    and the chi-square/z tests on the sketch exact. Otherwise the ``bins + 1`` quantiles
    (0 and 1 included, duplicates removed) of the values, plus :data:`TAIL_LEVELS`: long
    tails would otherwise leave the outer bins too wide for the Wasserstein distance.
    """
    distinct = np.unique(values)
    if distinct.size <= max_exact:
        return distinct.astype(np.float64), True
    levels = np.union1d(np.linspace(0.0, 1.0, bins + 1), TAIL_LEVELS)
    quantiles = np.quantile(values, levels)
    return np.unique(quantiles).astype(np.float64), False


def log_bucket_counts(values: np.ndarray) -> tuple[dict[int, int], dict[int, int], int]:
    """Log-bucket counts of finite values: (positive, negative, zeros).

    Bucket ``i`` of the positive side holds ``gamma**(i-1) < x <= gamma**i`` with
    ``gamma = 1.02``; the negative side mirrors it for ``-x``; ``|x| < 1e-12`` counts as zero.
    Fixed bucket bounds make the merge of two histograms an exact sum of counts.

    >>> log_bucket_counts(np.array([1.0, 1.01, -3.0, 0.0]))
    ({0: 1, 1: 1}, {56: 1}, 1)
    """
    zero = np.abs(values) < ZERO_BAND
    nonzero = values[~zero]
    idx = np.ceil(np.log(np.abs(nonzero)) / LOG_GAMMA - 1e-9).astype(np.int64)
    positive = _counts(idx[nonzero > 0])
    negative = _counts(idx[nonzero < 0])
    return positive, negative, int(zero.sum())


def _counts(idx: np.ndarray) -> dict[int, int]:
    keys, counts = np.unique(idx, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def log_bucket_bounds(index: int) -> tuple[float, float]:
    """The (lower, upper) bound of positive log bucket ``index``.

    >>> [round(b, 4) for b in log_bucket_bounds(1)]
    [1.0, 1.02]
    """
    return math.exp((index - 1) * LOG_GAMMA), math.exp(index * LOG_GAMMA)


def category_keys(values: Any) -> tuple[list[str], int]:
    """Normalised category keys of ``values`` and how many were missing (None/NaN).

    Integral numbers become ``"1"`` whatever their type (so a 0/1 flag served as float32
    matches a reference of ints), other floats their shortest repr, bytes are decoded.
    """
    array = np.asarray(values)
    kind = array.dtype.kind
    flat = array.ravel()
    if kind == "f":
        present = flat[~np.isnan(flat)]
        integral = np.floor(present) == present
        if integral.all() and (np.abs(present) < 2**53).all():
            return present.astype(np.int64).astype(str).tolist(), int(flat.size - present.size)
        # numpy's shortest repr at the array's own precision: FP32 0.7 is "0.7", as in float64
        keys = present.astype(str).astype(object)
        whole = integral & (np.abs(present) < 2**53)
        keys[whole] = present[whole].astype(np.int64).astype(str)
        return keys.tolist(), int(flat.size - present.size)
    if kind in "iu":
        return flat.astype(str).tolist(), 0
    if kind == "b":
        return ["True" if v else "False" for v in flat.tolist()], 0
    keys = [_key(v) for v in flat.tolist()]
    present_keys = [k for k in keys if k is not None]
    return present_keys, len(keys) - len(present_keys)


def _float_key(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return None if math.isnan(value) else _float_key(value)
    return str(value)


def key_counts(keys: list[str]) -> dict[str, int]:
    """Count keys (vectorised for large batches).

    >>> key_counts(["b", "a", "b"])
    {'a': 1, 'b': 2}
    """
    if not keys:
        return {}
    uniq, counts = np.unique(np.asarray(keys, dtype=object).astype(str), return_counts=True)
    return dict(zip(uniq.tolist(), counts.tolist(), strict=True))
