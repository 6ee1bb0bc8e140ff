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

from collections.abc import Mapping
from typing import Any, Literal

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
from modelyard.models import MAX_MAGNITUDE
from modelyard.sketch_models import (
    FORMAT,
    REFERENCE_FILENAME,
    CategoricalProfile,
    CategoricalSketch,
    FeatureProfile,
    FeatureSketch,
    LogHistogram,
    NumericProfile,
    NumericSketch,
    ReferenceProfile,
    SketchesAnswer,
    SketchMismatch,
    WindowSketches,
    decode_answer,
    decode_profile,
    decode_windows,
    encode,
    read_reference,
)


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
        InvalidArgument: columns of different lengths, no column, a column of lists of
            different lengths (ragged: numpy cannot make an array of it), or a score that is not
            one value per row.
    """
    lengths = set()
    for name, values in columns.items():
        try:
            lengths.add(len(np.asarray(values).ravel()))
        except ValueError:
            raise InvalidArgument(
                f"reference column {name!r} mixes values and lists, or lists of different "
                "lengths; give one value per row"
            ) from None
    if len(lengths) != 1:
        raise InvalidArgument(f"reference columns differ in length or are missing: {lengths}")
    rows = lengths.pop()
    scores = None if score is None else len(np.asarray(score, dtype=object).ravel())
    if scores is not None and scores != rows:
        raise InvalidArgument(
            f"the reference score has {scores} values for {rows} rows: give one per row"
        )
    kinds = kinds or {}
    features = {
        name: profile_column(values, kinds.get(name), bins, max_exact, max_categories)
        for name, values in columns.items()
    }
    score_profile = (
        None if score is None else profile_column(score, None, bins, max_exact, max_categories)
    )
    return ReferenceProfile(rows=rows, features=features, score=score_profile)


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
        raise InvalidArgument(
            f"a numeric reference column has no finite value (of magnitude below {MAX_MAGNITUDE:g})"
        )
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


__all__ = [
    "FORMAT",
    "REFERENCE_FILENAME",
    "CategoricalProfile",
    "CategoricalSketch",
    "FeatureProfile",
    "FeatureSketch",
    "LogHistogram",
    "NumericProfile",
    "NumericSketch",
    "ReferenceProfile",
    "SketchMismatch",
    "SketchesAnswer",
    "WindowSketches",
    "build_reference_profile",
    "decode_answer",
    "decode_profile",
    "decode_windows",
    "encode",
    "merge_all",
    "merge_features",
    "merge_windows",
    "profile_column",
    "read_reference",
    "sketch_column",
]
