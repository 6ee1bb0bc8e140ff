"""Reference profiles and mergeable drift sketches (contract 5; docs/drift.md).

A :class:`ReferenceProfile` describes the training data of a model version per feature (and
for the prediction score): numeric columns as bin edges with the reference's counts and value
sums per bin, categorical columns as frequencies. It travels in the model repository as
``<repo>/<model>/<version>/reference.json``; the server bins served values on its edges.

A :class:`WindowSketches` holds, for one (model, version, time window), one sketch per input
feature and one for the prediction score: :class:`NumericSketch` (counts and sums on the
reference's bins, or a log-bucket histogram when there is no reference) or
:class:`CategoricalSketch` (frequencies). :func:`merge_windows` combines workers, replicas and
windows; it is commutative and associative (integer counts, min/max; the float sums are
exact up to rounding), so the order in which sketches arrive does not matter.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> profile = build_reference_profile({"x": rng.normal(size=500), "c": ["a", "b"] * 250})
>>> profile.features["x"].exact, profile.features["c"].counts
(True, {'a': 250, 'b': 250})
>>> one = sketch_column(np.array([0.1, 0.2]), profile.features["x"])
>>> two = sketch_column(np.array([5.0]), profile.features["x"])
>>> both = merge_features(one, two)
>>> both.n, both.counts[-1], both.max
(3, 1, 5.0)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
import numpy as np

from modelyard.binning import (
    bin_numeric,
    category_keys,
    finite_values,
    key_counts,
    log_bucket_counts,
    reference_edges,
)
from modelyard.errors import InvalidArgument

FORMAT = 1
"""Version of the reference.json / sketch format."""


class NumericProfile(msgspec.Struct, kw_only=True, frozen=True, tag="numeric"):
    """The reference distribution of a numeric column.

    Attributes:
        n: finite reference values; missing: NaN/inf/None ones (left out, as Evidently does).
        edges: strictly increasing bin edges (:mod:`modelyard.binning` for the bin layout).
        exact: the edges are every distinct reference value (KS and chi-square are exact).
        counts: reference values per bin, ``len(edges) + 1`` of them.
        sums: sum of the reference values in each bin.
        mean, std: of the finite values; ``std`` is the population std (ddof 0) that
            Evidently norms the Wasserstein distance with.
        min, max: of the finite values (the first and last edge).
    """

    n: int
    missing: int = 0
    edges: tuple[float, ...]
    exact: bool
    counts: tuple[int, ...]
    sums: tuple[float, ...]
    mean: float
    std: float
    min: float
    max: float


class CategoricalProfile(msgspec.Struct, kw_only=True, frozen=True, tag="categorical"):
    """The reference frequencies of a categorical (or binary) column.

    Attributes:
        n: present values; missing: None/NaN ones.
        counts: category key -> reference count (:func:`modelyard.binning.category_keys`).
        other: reference values of categories beyond the profile's cap.
    """

    n: int
    missing: int = 0
    counts: dict[str, int]
    other: int = 0


FeatureProfile = NumericProfile | CategoricalProfile


class ReferenceProfile(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Per-feature reference distributions of a model version (``reference.json``).

    Attributes:
        format: the file format version (:data:`FORMAT`).
        rows: rows of the reference dataset.
        features: input feature name -> its profile.
        score: the profile of the prediction score, when the reference carries one.
    """

    format: int = FORMAT
    rows: int
    features: dict[str, FeatureProfile]
    score: FeatureProfile | None = None


class LogHistogram(msgspec.Struct, kw_only=True, frozen=True):
    """Reference-free numeric sketch: counts in fixed log buckets (1 % relative width).

    River's ``sketch.Histogram`` merges by fusing nearest bins (order-dependent, not
    associative) and ``stats.Quantile`` does not merge; fixed buckets merge exactly.
    """

    positive: dict[int, int] = {}
    negative: dict[int, int] = {}
    zeros: int = 0


class NumericSketch(msgspec.Struct, kw_only=True, frozen=True, tag="numeric"):
    """Served values of a numeric column in one window.

    Attributes:
        n, missing, min, max, total: finite values, missing ones, their range and sum.
        edges, exact: the reference bins the counts are on (empty: no reference).
        counts, sums: values and value sums per reference bin.
        off_grid: values that are no reference value (exact edges only).
        on_edges: per bin, values equal to the bin's left edge, i.e. to a reference value
            (exact edges only; the rest of the bin's values lie inside it).
        histogram: the log-bucket histogram when there is no reference.
    """

    n: int = 0
    missing: int = 0
    min: float | None = None
    max: float | None = None
    total: float = 0.0
    edges: tuple[float, ...] = ()
    exact: bool = False
    counts: tuple[int, ...] = ()
    sums: tuple[float, ...] = ()
    off_grid: int = 0
    on_edges: tuple[int, ...] = ()
    histogram: LogHistogram | None = None


class CategoricalSketch(msgspec.Struct, kw_only=True, frozen=True, tag="categorical"):
    """Served values of a categorical column in one window.

    Attributes:
        n, missing: present and missing values.
        counts: category key -> count.
        other: values of new categories past a worker's cap (bounded memory under
            high-cardinality input; the cap applies when counting, never when merging).
    """

    n: int = 0
    missing: int = 0
    counts: dict[str, int] = {}
    other: int = 0


FeatureSketch = NumericSketch | CategoricalSketch


class WindowSketches(msgspec.Struct, kw_only=True, frozen=True):
    """Sketches of every input feature and the prediction score of one version and window.

    Attributes:
        model, version: the served model version.
        start, end: the window (UTC), ``start`` inclusive; merged windows span the union.
        rows: rows sketched; requests: requests they came from.
        served: requests the version answered in the window (``requests / served`` is the
            share sketched: below 1 when the server samples).
        features: input feature name -> sketch.
        score: sketch of the prediction score (``None`` when the model gives none).
    """

    model: str
    version: str
    start: dt.datetime
    end: dt.datetime
    rows: int = 0
    requests: int = 0
    served: int = 0
    features: dict[str, FeatureSketch] = {}
    score: FeatureSketch | None = None


class SketchMismatch(InvalidArgument):
    """Two sketches cannot be merged (different kinds, bins or model versions)."""


def build_reference_profile(
    columns: Mapping[str, Any],
    *,
    score: Any = None,
    kinds: Mapping[str, Literal["numeric", "categorical"]] | None = None,
    bins: int = 100,
    max_exact: int = 1000,
    max_categories: int = 1000,
) -> ReferenceProfile:
    """Profile reference columns (name -> values) and optionally the prediction score.

    A column is numeric when its values are integers or floats (booleans and text are
    categorical) unless ``kinds`` says otherwise. Numeric columns with at most ``max_exact``
    distinct values keep every distinct value as an edge (exact tests), others get ``bins``
    quantile bins. Categorical columns keep their ``max_categories`` most frequent
    categories; the rest are counted in ``other``.

    Raises:
        InvalidArgument: columns of different lengths, or no column.
    """
    lengths = {len(np.asarray(v).ravel()) for v in columns.values()}
    if len(lengths) != 1:
        raise InvalidArgument(f"reference columns differ in length or are missing: {lengths}")
    kinds = kinds or {}
    features = {
        name: profile_column(values, kinds.get(name), bins, max_exact, max_categories)
        for name, values in columns.items()
    }
    score_profile = (
        None if score is None else profile_column(score, None, bins, max_exact, max_categories)
    )
    return ReferenceProfile(rows=lengths.pop(), features=features, score=score_profile)


def profile_column(
    values: Any,
    kind: str | None = None,
    bins: int = 100,
    max_exact: int = 1000,
    max_categories: int = 1000,
) -> FeatureProfile:
    """Profile one column (see :func:`build_reference_profile`)."""
    array = np.asarray(values)
    if kind is None:
        kind = "numeric" if array.dtype.kind in "iuf" else "categorical"
    if kind == "categorical":
        keys, missing = category_keys(array)
        counts = sorted(key_counts(keys).items(), key=lambda kv: (-kv[1], kv[0]))
        kept = dict(counts[:max_categories])
        return CategoricalProfile(
            n=len(keys), missing=missing, counts=kept, other=len(keys) - sum(kept.values())
        )
    x, missing = finite_values(array)
    if x.size == 0:
        raise InvalidArgument("a numeric reference column has no finite value")
    edges, exact = reference_edges(x, bins=bins, max_exact=max_exact)
    binned = bin_numeric(x, edges)
    return NumericProfile(
        n=int(x.size),
        missing=missing,
        edges=tuple(edges.tolist()),
        exact=exact,
        counts=tuple(binned.counts.tolist()),
        sums=tuple(binned.sums.tolist()),
        mean=float(x.mean()),
        std=float(x.std()),
        min=float(x.min()),
        max=float(x.max()),
    )


def sketch_column(values: Any, profile: FeatureProfile | None = None) -> FeatureSketch:
    """Sketch one batch of a column, on the reference's bins when a profile is given.

    Without a profile, numeric arrays get a log-bucket histogram and anything else counts
    categories.
    """
    if isinstance(profile, CategoricalProfile) or (
        profile is None and np.asarray(values).dtype.kind not in "iuf"
    ):
        keys, missing = category_keys(values)
        return CategoricalSketch(n=len(keys), missing=missing, counts=key_counts(keys))
    if profile is None:
        x, missing = finite_values(values)
        positive, negative, zeros = log_bucket_counts(x)
        return NumericSketch(
            n=int(x.size),
            missing=missing,
            min=float(x.min()) if x.size else None,
            max=float(x.max()) if x.size else None,
            total=float(x.sum()),
            histogram=LogHistogram(positive=positive, negative=negative, zeros=zeros),
        )
    b = bin_numeric(values, np.asarray(profile.edges))
    return NumericSketch(
        n=b.n,
        missing=b.missing,
        min=None if b.n == 0 else b.minimum,
        max=None if b.n == 0 else b.maximum,
        total=b.total,
        edges=profile.edges,
        exact=profile.exact,
        counts=tuple(b.counts.tolist()),
        sums=tuple(b.sums.tolist()),
        off_grid=b.off_grid,
        on_edges=tuple(b.on_edges.tolist()) if profile.exact else (),
    )


def _add_dicts(a: Mapping[Any, int], b: Mapping[Any, int]) -> dict[Any, int]:
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    return dict(sorted(out.items()))


def _extreme(a: float | None, b: float | None, pick: Any) -> float | None:
    if a is None:
        return b
    return a if b is None else float(pick(a, b))


def _merge_numeric(a: NumericSketch, b: NumericSketch) -> NumericSketch:
    if a.n + a.missing == 0 and not a.edges and a.histogram is None:
        return b
    if b.n + b.missing == 0 and not b.edges and b.histogram is None:
        return a
    if a.edges != b.edges or (a.histogram is None) != (b.histogram is None):
        raise SketchMismatch("numeric sketches on different bins cannot be merged")
    histogram = None
    if a.histogram is not None and b.histogram is not None:
        histogram = LogHistogram(
            positive=_add_dicts(a.histogram.positive, b.histogram.positive),
            negative=_add_dicts(a.histogram.negative, b.histogram.negative),
            zeros=a.histogram.zeros + b.histogram.zeros,
        )
    return NumericSketch(
        n=a.n + b.n,
        missing=a.missing + b.missing,
        min=_extreme(a.min, b.min, min),
        max=_extreme(a.max, b.max, max),
        total=a.total + b.total,
        edges=a.edges,
        exact=a.exact,
        counts=tuple(x + y for x, y in zip(a.counts, b.counts, strict=True)),
        sums=tuple(x + y for x, y in zip(a.sums, b.sums, strict=True)),
        off_grid=a.off_grid + b.off_grid,
        on_edges=tuple(x + y for x, y in zip(a.on_edges, b.on_edges, strict=True)),
        histogram=histogram,
    )


def merge_features(a: FeatureSketch, b: FeatureSketch) -> FeatureSketch:
    """Merge two sketches of one feature.

    Raises:
        SketchMismatch: a numeric and a categorical sketch, or numeric ones on other bins.
    """
    if isinstance(a, NumericSketch) and isinstance(b, NumericSketch):
        return _merge_numeric(a, b)
    if isinstance(a, CategoricalSketch) and isinstance(b, CategoricalSketch):
        return CategoricalSketch(
            n=a.n + b.n,
            missing=a.missing + b.missing,
            counts=_add_dicts(a.counts, b.counts),
            other=a.other + b.other,
        )
    raise SketchMismatch("a numeric and a categorical sketch cannot be merged")


def _merge_optional(a: FeatureSketch | None, b: FeatureSketch | None) -> FeatureSketch | None:
    if a is None:
        return b
    return a if b is None else merge_features(a, b)


def merge_windows(a: WindowSketches, b: WindowSketches) -> WindowSketches:
    """Merge the sketches of one model version (two workers, replicas or windows).

    Raises:
        SketchMismatch: different model versions, or feature sketches that do not merge.
    """
    if (a.model, a.version) != (b.model, b.version):
        raise SketchMismatch(
            f"sketches of {a.model}/{a.version} and {b.model}/{b.version} cannot be merged"
        )
    features = dict(a.features)
    for name, sketch in b.features.items():
        mine = features.get(name)
        features[name] = sketch if mine is None else merge_features(mine, sketch)
    return WindowSketches(
        model=a.model,
        version=a.version,
        start=min(a.start, b.start),
        end=max(a.end, b.end),
        rows=a.rows + b.rows,
        requests=a.requests + b.requests,
        served=a.served + b.served,
        features=dict(sorted(features.items())),
        score=_merge_optional(a.score, b.score),
    )


def merge_all(windows: list[WindowSketches]) -> WindowSketches | None:
    """Merge any number of window sketches (``None`` when there are none).

    Raises:
        SketchMismatch: as :func:`merge_windows`.
    """
    merged: WindowSketches | None = None
    for window in windows:
        merged = window if merged is None else merge_windows(merged, window)
    return merged


_PROFILE_DECODER = msgspec.json.Decoder(ReferenceProfile)
_WINDOW_DECODER = msgspec.json.Decoder(WindowSketches)
_ENCODER = msgspec.json.Encoder()


def encode(value: ReferenceProfile | WindowSketches) -> bytes:
    """JSON of a profile or window sketches."""
    return _ENCODER.encode(value)


def decode_windows(data: bytes) -> WindowSketches:
    """Window sketches from JSON (as the sketch endpoint answers).

    Raises:
        InvalidArgument: malformed JSON or not a window-sketches object.
    """
    try:
        return _WINDOW_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed window sketches: {exc}") from None


def decode_profile(data: bytes) -> ReferenceProfile:
    """A reference profile from ``reference.json`` bytes, checked for consistency.

    Raises:
        InvalidArgument: malformed JSON, an unknown format, or bins that do not fit the edges.
    """
    try:
        profile = _PROFILE_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed reference profile: {exc}") from None
    if profile.format != FORMAT:
        raise InvalidArgument(f"reference profile format {profile.format} is not {FORMAT}")
    for name, feature in [*profile.features.items(), ("score", profile.score)]:
        if isinstance(feature, NumericProfile):
            _check_numeric(name, feature)
    return profile


def _check_numeric(name: str, p: NumericProfile) -> None:
    width = len(p.edges) + 1
    increasing = all(x < y for x, y in zip(p.edges, p.edges[1:], strict=False))
    finite = all(math.isfinite(e) for e in p.edges)
    if not p.edges or not increasing or not finite:
        raise InvalidArgument(f"reference feature {name!r}: edges must be finite and increasing")
    if len(p.counts) != width or len(p.sums) != width or sum(p.counts) != p.n:
        raise InvalidArgument(
            f"reference feature {name!r}: counts/sums need {width} bins summing to n={p.n}"
        )
