"""Running tallies of one (model, version, window): numpy counts added in place per flush.

The background flush folds a batch of served rows into the window's :class:`WindowTally`
with a few whole-batch numpy calls, whatever the number of features: numeric columns with a
reference are one block (:class:`BinnedColumns`: a branch-free binary search of every value
among its column's edges, whole block at once, into a shared index matrix, then one
``bincount`` each for counts, value sums and on-edge counts over the block's concatenated
bins), numeric columns without one are another (:class:`LogColumns`: log-bucket indices for
the whole block, one ``bincount``, dense count arrays over the window's bucket range). Only
categorical (and non-numeric) columns go through :func:`~modelyard.sketches.sketch_column`
and a dict merge per flush. :meth:`WindowTally.sketches` turns a tally into the wire
:class:`~modelyard.sketches.WindowSketches` (on a read, and once when the window closes); the
result equals sketching the window's rows batch by batch and merging them with
:func:`~modelyard.sketches.merge_windows`: same integer counts, the same float sums added in
the same order (columns are laid out column-major so that numpy sums each column pairwise,
as it does a lone column).

The fold runs on the serving core (issue 16: a saturated server keeps >= 90 % of its
throughput with sketches on), so its CPU and its memory traffic are kept low:

* the block matrices are scratch (:class:`_Scratch`, per thread), reused from one fold to the
  next: fresh temporaries of a few hundred KB were handed back to the kernel when freed and
  faulted in again, zeroed, by the next fold;
* the log buckets are computed in place in one float64 and one int64 matrix, with the same
  elementwise operations in the same order as :func:`~modelyard.binning.log_bucket_counts`;
  the two sides of a bucket are interleaved (``2 * bucket + negative``) rather than added
  with a mask, and a batch without negative values counts one side only;
* the binary search replaces one ``searchsorted`` per column: on real data that costs about
  35 ns a value (one mispredicted branch per level of the search), the block-wide search
  (``log2`` of the padded edge count rounds of gather, compare and add) about 8 ns.

Measured with ``SketchBook._fold`` on the benchmark's data (runs of 64 rows x 32 FP32
features plus a label and FP32 probabilities, ~3,000 requests per flush, ``time.thread_time``,
3 interleaved rounds, 2-core EPYC, 2026-12-04): the benchmark's single repeated row on log
buckets 0.93 -> 0.24 µs per request, varied rows 0.51-0.96 (allocator state) -> 0.24, on
reference bins (107 edges a feature) 1.75 -> 0.60. In a saturated server (REST V2 c=64, one
core, log buckets; medians of 10 runs each in quiet sessions) the fold thread's CPU went
from 0.445 (0.35-0.47) to 0.37 (0.28-0.45) µs per request, a gain near the run-to-run
spread (the server's whole CPU per request, ±1 µs from run to run, does not resolve it):
the server's allocator did not fault those pages in, and much of the fold's remaining cost
there is its memory (cache misses on data the event loop wrote): the
``modelyard_sketch_cpu_seconds`` counter read 0.39 µs per request there, against 0.24 in
the micro-benchmark.

>>> import datetime as dt
>>> import numpy as np
>>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> tally = WindowTally("m", "1", t0, t0 + dt.timedelta(minutes=1))
>>> tally.add([("x", np.array([1.0, 1.01, -3.0, 0.0]))], {}, 1000)
>>> x = tally.sketches().features["x"]
>>> x.n, x.histogram.positive, x.histogram.negative, x.histogram.zeros
(4, {0: 1, 1: 1}, {56: 1}, 1)
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, NamedTuple

import msgspec
import numpy as np

from modelyard.binning import LOG_GAMMA, ZERO_BAND
from modelyard.models import MAX_MAGNITUDE
from modelyard.sketches import (
    CategoricalProfile,
    CategoricalSketch,
    FeatureProfile,
    FeatureSketch,
    LogHistogram,
    NumericProfile,
    NumericSketch,
    SketchMismatch,
    WindowSketches,
    merge_features,
    sketch_column,
)

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping, Sequence

Column = tuple[str | None, np.ndarray]
"""A column of a batch: its feature name (``None``: the prediction score) and one value per row."""


class _Extremes:
    """Finite values, missing ones, min, max and sum per column of a block."""

    def __init__(self, width: int) -> None:
        self.n = np.zeros(width, dtype=np.int64)
        self.missing = np.zeros(width, dtype=np.int64)
        self.min = np.full(width, math.inf)
        self.max = np.full(width, -math.inf)
        self.total = np.zeros(width)

    def add(self, matrix: np.ndarray, finite: np.ndarray | None) -> np.ndarray:
        """Fold a column-major float64 batch in; returns it with non-finite values as 0."""
        if finite is None:
            self.n += matrix.shape[0]
            np.minimum(self.min, matrix.min(axis=0, initial=math.inf), out=self.min)
            np.maximum(self.max, matrix.max(axis=0, initial=-math.inf), out=self.max)
            self.total += matrix.sum(axis=0)
            return matrix
        present = finite.sum(axis=0)
        self.n += present
        self.missing += matrix.shape[0] - present
        np.minimum(self.min, np.where(finite, matrix, math.inf).min(axis=0, initial=math.inf),
                   out=self.min)  # fmt: skip
        np.maximum(self.max, np.where(finite, matrix, -math.inf).max(axis=0, initial=-math.inf),
                   out=self.max)  # fmt: skip
        # NOTE: each column summed over its finite values alone: numpy's pairwise sum then
        # groups them as a lone column's sum does, so totals match sketch_column exactly
        self.total += [matrix[finite[:, j], j].sum() for j in range(matrix.shape[1])]
        return np.where(finite, matrix, 0.0)

    def fields(self, j: int) -> dict[str, object]:
        n = int(self.n[j])
        return {
            "n": n,
            "missing": int(self.missing[j]),
            "min": float(self.min[j]) if n else None,
            "max": float(self.max[j]) if n else None,
            "total": float(self.total[j]),
        }


_SCRATCH_BYTES = 1 << 22
"""Largest scratch matrix kept for reuse (4 MiB: a chunk of ~16,000 rows of 32 columns);
bigger batches get fresh arrays."""


class _Scratch(threading.local):
    """Scratch matrices reused from one fold to the next, one set per thread.

    Fresh arrays of a few hundred KB per fold are not free: the allocator hands such blocks
    back to the kernel when they are freed (heap trim, or ``munmap`` past the mmap threshold),
    and every fold then faults their pages in again, zeroed. That page-fault (system) time was
    about 60 % of a fold's CPU (0.41 of 0.68 µs per request, 1,024-row chunks of 33 columns).
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def matrix(self, name: str, shape: tuple[int, int], dtype: type[np.generic]) -> np.ndarray:
        """An uninitialised column-major ``shape`` matrix, valid until ``name`` is asked again."""
        size = shape[0] * shape[1] * np.dtype(dtype).itemsize
        if size > _SCRATCH_BYTES:
            return np.empty(shape, dtype=dtype, order="F")
        buffer = self.buffers.get(name)
        if buffer is None or buffer.nbytes < size:
            buffer = self.buffers[name] = np.empty(size, dtype=np.uint8)
        return buffer[:size].view(dtype).reshape(shape, order="F")


_SCRATCH = _Scratch()


def _matrix(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """The columns as one column-major float64 matrix, and its finite mask (None: all);
    both scratch (:class:`_Scratch`). Values of magnitude :data:`~modelyard.models.
    MAX_MAGNITUDE` or more count as missing, as in :func:`~modelyard.binning.finite_values`;
    only float64 columns can hold one, so only they pay the extra pass."""
    shape = (len(columns[0]), len(columns))
    matrix = _SCRATCH.matrix("matrix", shape, np.float64)
    wide = False
    for j, values in enumerate(columns):
        matrix[:, j] = values
        wide = wide or values.dtype == np.float64
    finite = _SCRATCH.matrix("finite", shape, np.bool_)
    if wide:
        magnitude = np.abs(matrix, out=_SCRATCH.matrix("magnitude", shape, np.float64))
        np.less(magnitude, MAX_MAGNITUDE, out=finite)  # False for NaN and +-inf too
    else:
        np.isfinite(matrix, out=finite)
    return matrix, None if finite.all() else finite


def _precision(values: np.ndarray) -> type[np.floating]:
    return values.dtype.type if values.dtype in (np.float32, np.float16) else np.float64


class _Grid(NamedTuple):
    """The bins of a :class:`BinnedColumns` block at one set of column precisions.

    Attributes:
        left: the left edge of each flat bin (NaN for a column's first bin and the last slot).
        table: column ``j``'s edges from ``j * size``, each column padded with ``inf``.
        size: slots per column in ``table``: a power of two above every column's edge count.
        bases: ``j * size`` per column; shift: ``offsets[j] - j * size``.
    """

    left: np.ndarray
    table: np.ndarray
    size: int
    bases: np.ndarray
    shift: np.ndarray


class BinnedColumns:
    """Counts, value sums and on-edge counts of numeric columns on their reference bins.

    The columns' bins are laid end to end in one flat array (column ``j``'s ``len(edges)+1``
    bins from ``offsets[j]``), plus one slot at the end where missing values are counted and
    dropped.
    """

    def __init__(self, profiles: Sequence[NumericProfile]) -> None:
        self.profiles = tuple(profiles)
        widths = [len(p.edges) + 1 for p in self.profiles]
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.intp)
        size = int(self.offsets[-1])
        self.counts = np.zeros(size + 1, dtype=np.int64)
        self.sums = np.zeros(size + 1)
        self.on_edges = np.zeros(size + 1, dtype=np.int64)
        self.extremes = _Extremes(len(self.profiles))
        self._grids: dict[tuple[str, ...], _Grid] = {}

    def _grid(self, columns: Sequence[np.ndarray]) -> _Grid:
        """The columns' edges and the flat left edge per bin, at each column's precision.

        FP32/FP16 values compare with the edges rounded to their precision
        (:func:`modelyard.binning.bin_numeric`).
        """
        dtypes = tuple(c.dtype.str for c in columns)
        if dtypes not in self._grids:
            edges = [
                np.asarray(p.edges).astype(_precision(c)).astype(np.float64)
                for p, c in zip(self.profiles, columns, strict=True)
            ]
            left = np.full(int(self.offsets[-1]) + 1, math.nan)
            for j, e in enumerate(edges):
                left[self.offsets[j] + 1 : self.offsets[j + 1]] = e
            size = 1 << max(len(e) for e in edges).bit_length()
            table = np.full((len(edges), size), math.inf)
            for j, e in enumerate(edges):
                table[j, : len(e)] = e
            bases = np.arange(len(edges), dtype=np.intp) * size
            self._grids[dtypes] = _Grid(left, table.ravel(), size, bases, self.offsets[:-1] - bases)
        return self._grids[dtypes]

    def _bins(self, matrix: np.ndarray, grid: _Grid) -> np.ndarray:
        """Each value's flat bin (``offsets[j]`` + the edges ``<=`` it, what
        ``searchsorted(edges, x, side="right")`` counts; any for a non-finite value).

        A branch-free binary search over the whole block: with ``size`` (a power of two)
        slots per column, ``log2(size)`` rounds of gather, compare and add, each a whole-block
        numpy call. ``searchsorted`` per column costs about 35 ns a value on real data (a
        mispredicted branch per level); this about 8 ns a value with 107 edges.
        """
        shape = matrix.shape
        found = _SCRATCH.matrix("keys", shape, np.intp)
        found[...] = grid.bases
        # NOTE: flat (column-major) views: take into a 2-D ``out`` is 10x slower
        flat, values = found.ravel(order="F"), matrix.ravel(order="F")
        probe = _SCRATCH.matrix("probe", shape, np.intp).ravel(order="F")
        probed = _SCRATCH.matrix("scratch", shape, np.float64).ravel(order="F")
        below = _SCRATCH.matrix("on_edge", shape, np.bool_).ravel(order="F")
        step = grid.size // 2
        while step:
            np.add(flat, step - 1, out=probe)
            np.take(grid.table, probe, out=probed, mode="clip")  # NOTE: in range
            np.less_equal(probed, values, out=below)
            np.multiply(below.view(np.uint8), np.intp(step), out=probe)
            flat += probe
            step //= 2
        found += grid.shift
        return found

    def add(self, columns: Sequence[np.ndarray]) -> None:
        """Fold one batch (one array per column, equal lengths) in."""
        matrix, finite = _matrix(columns)
        grid = self._grid(columns)
        keys = self._bins(matrix, grid)
        if finite is not None:
            keys[~finite] = len(self.counts) - 1
        values = self.extremes.add(matrix, finite)
        flat = keys.ravel(order="F")
        size = len(self.counts)
        self.counts += np.bincount(flat, minlength=size)
        self.sums += np.bincount(flat, weights=values.ravel(order="F"), minlength=size)
        lefts = _SCRATCH.matrix("scratch", matrix.shape, np.float64).ravel(order="F")
        np.take(
            grid.left, flat, out=lefts, mode="clip"
        )  # NOTE: in range; "raise" copies via a buffer
        on_edge = _SCRATCH.matrix("on_edge", matrix.shape, np.bool_).ravel(order="F")
        np.equal(lefts, matrix.ravel(order="F"), out=on_edge)
        self.on_edges += np.bincount(flat[on_edge], minlength=size)

    def sketch(self, j: int) -> NumericSketch:
        """The wire sketch of column ``j``."""
        profile = self.profiles[j]
        bins = slice(self.offsets[j], self.offsets[j + 1])
        fields = self.extremes.fields(j)
        on_edges = self.on_edges[bins]
        return NumericSketch(
            **fields,  # type: ignore[arg-type]
            edges=profile.edges,
            exact=profile.exact,
            counts=tuple(self.counts[bins].tolist()),
            sums=tuple(self.sums[bins].tolist()),
            off_grid=int(self.extremes.n[j] - on_edges.sum()),
            on_edges=tuple(on_edges.tolist()) if profile.exact else (),
        )


class LogColumns:
    """Log-bucket counts of numeric columns without a reference (see
    :func:`modelyard.binning.log_bucket_counts`), dense over the window's bucket range."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.low = 0
        self.counts = np.zeros((width, 0, 2), dtype=np.int64)  # [column, bucket, +/-]
        self.zeros = np.zeros(width, dtype=np.int64)
        self.extremes = _Extremes(width)

    def add(self, columns: Sequence[np.ndarray]) -> None:
        """Fold one batch (one array per column, equal lengths) in."""
        matrix, finite = _matrix(columns)
        self.extremes.add(matrix, finite)
        # NOTE: scratch matrices worked in place (column-major like ``matrix``): the
        # elementwise operations and their order are those of log_bucket_counts, so the
        # bucket indices are the same
        shape = matrix.shape
        scratch = np.abs(matrix, out=_SCRATCH.matrix("scratch", shape, np.float64))
        zero = np.less(scratch, ZERO_BAND, out=_SCRATCH.matrix("zero", shape, np.bool_))
        self.zeros += np.count_nonzero(zero, axis=0)
        if finite is None and not zero.any():
            unbucketed = None
        else:
            unbucketed = zero if finite is None else np.logical_or(zero, ~finite, out=zero)
            scratch[unbucketed] = 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(scratch, out=scratch)
        scratch /= LOG_GAMMA
        scratch -= 1e-9
        np.ceil(scratch, out=scratch)
        slot = _SCRATCH.matrix("slot", shape, np.int64)
        np.copyto(slot, scratch, casting="unsafe")
        if unbucketed is None:
            low, high = int(slot.min()), int(slot.max())
        elif not unbucketed.all():
            bucketed = slot[~unbucketed]
            low, high = int(bucketed.min()), int(bucketed.max())
        else:
            return
        span = high - low + 1
        negative = np.less(matrix, 0, out=_SCRATCH.matrix("negative", shape, np.bool_))
        # NOTE: in place, the column offsets added as a row (an expression broadcasting
        # ``2 * arange + negative`` over the column-major matrix is 4x slower); with negative
        # values the two sides of a bucket are interleaved (``2 * bucket + negative``: a
        # masked add of ``span`` is 7x slower on mixed signs); with none, one side is counted
        if negative.any():
            sides = 2
            slot *= 2
            slot += negative
            slot += 2 * span * np.arange(self.width, dtype=np.int64) - 2 * low
        else:
            sides = 1
            slot += span * np.arange(self.width, dtype=np.int64) - low
        if unbucketed is not None:
            slot[unbucketed] = sides * self.width * span
        counted = np.bincount(slot.ravel(order="F"), minlength=sides * self.width * span + 1)
        self._fold(counted[:-1].reshape(self.width, span, sides), low)

    def _fold(self, counts: np.ndarray, low: int) -> None:
        """Add ``counts`` ([column, bucket - low, side]; one side: the positive one) in."""
        span = self.counts.shape[1]
        start, stop = low, low + counts.shape[1]
        if span:
            start, stop = min(self.low, start), max(self.low + span, stop)
        if (start, stop) != (self.low, self.low + span):
            grown = np.zeros((self.width, stop - start, 2), dtype=np.int64)
            grown[:, self.low - start : self.low - start + span] = self.counts
            self.counts, self.low = grown, start
        self.counts[:, low - self.low : low - self.low + counts.shape[1], : counts.shape[2]] += (
            counts
        )

    def sketch(self, j: int) -> NumericSketch:
        """The wire sketch of column ``j``."""
        sides = []
        for side in self.counts[j].T:
            (buckets,) = np.nonzero(side)
            sides.append(
                dict(zip((buckets + self.low).tolist(), side[buckets].tolist(), strict=True))
            )
        histogram = LogHistogram(positive=sides[0], negative=sides[1], zeros=int(self.zeros[j]))
        return NumericSketch(**self.extremes.fields(j), histogram=histogram)  # type: ignore[arg-type]


def _kind(values: np.ndarray, profile: FeatureProfile | None) -> str:
    if isinstance(profile, NumericProfile) and values.dtype.kind in "iufb":
        return "binned"
    return "log" if profile is None and values.dtype.kind in "iuf" else "other"


class WindowTally:
    """The running sketches of one (model, version, window) (see the module docstring).

    The columns of the first batch fix its layout; a version's columns never change.
    """

    def __init__(self, model: str, version: str, start: dt.datetime, end: dt.datetime) -> None:
        self.window = WindowSketches(model=model, version=version, start=start, end=end)
        self.rows = self.requests = self.served = 0
        self._layout: tuple[tuple[str | None, str], ...] | None = None
        self._names: list[str | None] = []
        self._binned: BinnedColumns | None = None
        self._log: LogColumns | None = None
        self._others: dict[str | None, FeatureSketch] = {}

    def add(
        self,
        columns: Sequence[Column],
        profiles: Mapping[str | None, FeatureProfile],
        cap: int,
        requests: int = 1,
    ) -> None:
        """Fold a batch of ``requests`` requests in (``profiles``: the reference's, by column).

        Raises:
            SketchMismatch: columns other than those of the earlier batches.
        """
        names = [name for name, _ in columns]
        if self._layout is None:
            self._start(tuple((n, _kind(v, profiles.get(n))) for n, v in columns), profiles)
            self._names = names
        elif names != self._names:  # NOTE: kinds follow the names and tensor datatypes
            raise SketchMismatch(f"{self.window.model}/{self.window.version}: columns changed")
        assert self._layout is not None  # made above
        self.rows += len(columns[0][1]) if columns else 0
        self.requests += requests
        binned: list[np.ndarray] = []
        log: list[np.ndarray] = []
        for (name, values), (_, kind) in zip(columns, self._layout, strict=True):
            if kind == "binned":
                binned.append(values)
            elif kind == "log":
                log.append(values)
            else:
                self._add_other(name, values, profiles.get(name), cap)
        if self._binned is not None:
            self._binned.add(binned)
        if self._log is not None:
            self._log.add(log)

    def _start(
        self,
        layout: tuple[tuple[str | None, str], ...],
        profiles: Mapping[str | None, FeatureProfile],
    ) -> None:
        self._layout = layout
        binned = [profiles[n] for n, kind in layout if kind == "binned"]
        if binned:
            self._binned = BinnedColumns(binned)  # type: ignore[arg-type]
        if any(kind == "log" for _, kind in layout):
            self._log = LogColumns(sum(kind == "log" for _, kind in layout))

    def _add_other(
        self, name: str | None, values: np.ndarray, profile: FeatureProfile | None, cap: int
    ) -> None:
        old = self._others.get(name)
        fresh = _capped(old, sketch_column(values, profile), profile, cap)
        self._others[name] = fresh if old is None else merge_features(old, fresh)

    def sketches(self) -> WindowSketches:
        """The window's wire sketches so far."""
        found: dict[str | None, FeatureSketch] = {}
        counters = {"binned": 0, "log": 0}
        for name, kind in self._layout or ():
            if kind == "other":
                found[name] = self._others[name]
                continue
            block = self._binned if kind == "binned" else self._log
            assert block is not None  # the layout made it
            found[name] = block.sketch(counters[kind])
            counters[kind] += 1
        score = found.pop(None, None)
        features = {name: sketch for name, sketch in found.items() if name is not None}
        return msgspec.structs.replace(
            self.window,
            rows=self.rows,
            requests=self.requests,
            served=self.served,
            features=dict(sorted(features.items())),
            score=score,
        )


def _capped(
    old: FeatureSketch | None,
    fresh: FeatureSketch,
    profile: FeatureProfile | None,
    cap: int,
) -> FeatureSketch:
    """``fresh`` with categories beyond ``cap`` new ones (not in the reference) in ``other``."""
    if not isinstance(fresh, CategoricalSketch) or not isinstance(old, CategoricalSketch | None):
        return fresh
    reference = set(profile.counts) if isinstance(profile, CategoricalProfile) else set()
    seen = set(old.counts) if old is not None else set()
    room = max(cap - len(seen - reference), 0)
    kept: dict[str, int] = {}
    other = fresh.other
    for key, count in fresh.counts.items():
        if key in reference or key in seen:
            kept[key] = count
        elif room > 0:
            room -= 1
            kept[key] = count
        else:
            other += count
    return msgspec.structs.replace(fresh, counts=kept, other=other)


__all__ = ["BinnedColumns", "Column", "LogColumns", "WindowTally"]
