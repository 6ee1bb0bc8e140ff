"""Reference profiles and drift sketches: merge laws (hypothesis), binning, codec, validation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidArgument
from modelyard.sketches import (
    CategoricalSketch,
    FeatureSketch,
    NumericProfile,
    NumericSketch,
    SketchMismatch,
    WindowSketches,
    build_reference_profile,
    decode_profile,
    decode_windows,
    encode,
    merge_features,
    merge_windows,
    sketch_column,
)

# Quarter steps keep every float sum exact, so merge results compare field by field.
quarters = st.integers(-40_000, 40_000).map(lambda i: i / 4)
batches = st.lists(st.one_of(quarters, st.just(math.nan)), min_size=0, max_size=40)
categories = st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=40)

REFERENCE = build_reference_profile(
    {
        "exact": np.tile(np.arange(-50, 50) / 2, 50),
        "quantiles": np.random.default_rng(0).normal(0, 100, 5000),
        "colour": np.random.default_rng(1).choice(["a", "b", "c"], 5000),
    }
)
T0 = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def _numeric(values: list[float], feature: str | None) -> FeatureSketch:
    profile = None if feature is None else REFERENCE.features[feature]
    return sketch_column(np.array(values, dtype=np.float64), profile)


@pytest.mark.parametrize("feature", ["exact", "quantiles", None])
@given(a=batches, b=batches, c=batches)
def test_numeric_merge_is_commutative_associative_and_equals_one_pass(
    feature: str | None, a: list[float], b: list[float], c: list[float]
) -> None:
    sa, sb, sc = (_numeric(x, feature) for x in (a, b, c))
    assert merge_features(sa, sb) == merge_features(sb, sa)
    assert merge_features(merge_features(sa, sb), sc) == merge_features(sa, merge_features(sb, sc))
    merged = merge_features(merge_features(sa, sb), sc)
    whole = _numeric(a + b + c, feature)
    assert isinstance(merged, NumericSketch)
    assert isinstance(whole, NumericSketch)
    assert (merged.n, merged.missing, merged.min, merged.max) == (
        whole.n,
        whole.missing,
        whole.min,
        whole.max,
    )
    assert merged.counts == whole.counts
    assert merged.sums == whole.sums
    assert merged.histogram == whole.histogram


@given(a=categories, b=categories, c=categories)
def test_categorical_merge_is_commutative_associative_and_equals_one_pass(
    a: list[str], b: list[str], c: list[str]
) -> None:
    profile = REFERENCE.features["colour"]
    sa, sb, sc = (sketch_column(np.array(x, dtype=object), profile) for x in (a, b, c))
    assert merge_features(sa, sb) == merge_features(sb, sa)
    assert merge_features(merge_features(sa, sb), sc) == merge_features(sa, merge_features(sb, sc))
    whole = sketch_column(np.array(a + b + c, dtype=object), profile)
    assert merge_features(merge_features(sa, sb), sc) == whole


windows = st.builds(
    lambda start, length, x, colour, score, served: WindowSketches(
        model="churn",
        version="3",
        start=T0 + dt.timedelta(seconds=start),
        end=T0 + dt.timedelta(seconds=start + length),
        rows=len(x),
        requests=min(len(x), served),
        served=served,
        features={
            "exact": _numeric(x, "exact"),
            **({"colour": sketch_column(np.array(colour, dtype=object))} if colour else {}),
        },
        score=None if score is None else _numeric(score, "quantiles"),
    ),
    start=st.integers(0, 600),
    length=st.integers(1, 120),
    x=batches,
    colour=categories,
    score=st.none() | batches,
    served=st.integers(0, 100),
)


@settings(max_examples=60)
@given(a=windows, b=windows, c=windows)
def test_window_merge_is_commutative_and_associative(
    a: WindowSketches, b: WindowSketches, c: WindowSketches
) -> None:
    assert merge_windows(a, b) == merge_windows(b, a)
    assert merge_windows(merge_windows(a, b), c) == merge_windows(a, merge_windows(b, c))
    merged = merge_windows(merge_windows(a, b), c)
    assert merged.start == min(w.start for w in (a, b, c))
    assert merged.served == a.served + b.served + c.served


@given(w=windows)
def test_window_sketches_survive_json(w: WindowSketches) -> None:
    assert decode_windows(encode(w)) == w


def test_reference_profile_survives_json_and_keeps_the_reference_exactly() -> None:
    again = decode_profile(encode(REFERENCE))
    assert again == REFERENCE
    exact = again.features["exact"]
    assert isinstance(exact, NumericProfile)
    assert exact.exact
    assert len(exact.edges) == 100
    assert exact.std == pytest.approx(float(np.std(np.arange(-50, 50) / 2)))
    quantiles = again.features["quantiles"]
    assert isinstance(quantiles, NumericProfile)
    assert not quantiles.exact
    assert len(quantiles.edges) == 107  # 101 quantiles and 6 tail levels
    assert sum(quantiles.counts) == 5000


def test_huge_fp64_values_count_as_missing_so_profiles_and_sketches_survive_json() -> None:
    """Two FP64 values of 1e308 sum to inf, which JSON cannot hold: a profile or sketch with one
    was stored but could never be read back (its std or sum decoded from ``null``)."""
    column = np.array([1e308, -1e308, 1e100, -1e100, 9.9e99, 0.5, 1.5, np.nan])
    profile = build_reference_profile({"x": column}, score=column)
    assert decode_profile(encode(profile)) == profile
    x = profile.features["x"]
    assert isinstance(x, NumericProfile)
    assert (x.n, x.missing, x.max) == (3, 5, 9.9e99)
    assert math.isfinite(x.std)
    for reference in (x, None):
        sketch = sketch_column(column, reference)
        assert isinstance(sketch, NumericSketch)
        assert (sketch.n, sketch.missing, sketch.total) == (3, 5, 9.9e99 + 2.0)
        window = WindowSketches(
            model="m",
            version="1",
            start=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
            end=dt.datetime(2026, 12, 6, 0, 1, tzinfo=dt.UTC),
            rows=8,
            requests=1,
            served=1,
            features={"x": sketch},
        )
        assert decode_windows(encode(window)) == window
    with pytest.raises(InvalidArgument, match="below 1e"):
        build_reference_profile({"x": [1e308, -1e308]})


def test_values_beyond_the_reference_land_in_the_open_end_bins() -> None:
    s = sketch_column(np.array([-1e9, 0.0, 1e9, np.inf, np.nan]), REFERENCE.features["exact"])
    assert isinstance(s, NumericSketch)
    assert (s.counts[0], s.counts[-1], s.n, s.missing) == (1, 1, 3, 2)
    assert s.off_grid == 2


def test_categories_match_across_number_types() -> None:
    profile = build_reference_profile({"flag": np.array([0, 1, 1])}, kinds={"flag": "categorical"})
    s = sketch_column(np.array([1.0, 0.0, np.nan], dtype=np.float32), profile.features["flag"])
    assert isinstance(s, CategoricalSketch)
    assert (s.counts, s.missing) == ({"0": 1, "1": 1}, 1)


def test_merging_different_kinds_bins_or_versions_is_refused() -> None:
    numeric = _numeric([1.0], "exact")
    with pytest.raises(SketchMismatch, match="numeric and a categorical"):
        merge_features(numeric, CategoricalSketch(n=1, counts={"a": 1}))
    with pytest.raises(SketchMismatch, match="different bins"):
        merge_features(numeric, _numeric([1.0], "quantiles"))
    a = WindowSketches(model="m", version="1", start=T0, end=T0)
    with pytest.raises(SketchMismatch, match="m/1 and m/2"):
        merge_windows(a, msgspec.structs.replace(a, version="2"))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{", "malformed"),
        (b'{"rows": 1, "features": {}, "extra": 1}', "malformed"),
        (b'{"format": 9, "rows": 1, "features": {}}', "format 9"),
        (
            b'{"rows": 1, "features": {"x": {"type": "numeric", "n": 1, "edges": [2.0, 1.0],'
            b' "exact": true, "counts": [0, 1, 0], "sums": [0, 1, 0], "mean": 1, "std": 0,'
            b' "min": 1, "max": 2}}}',
            "increasing",
        ),
        (
            b'{"rows": 1, "features": {"x": {"type": "numeric", "n": 1, "edges": [1.0],'
            b' "exact": true, "counts": [1], "sums": [1], "mean": 1, "std": 0,'
            b' "min": 1, "max": 1}}}',
            "bins",
        ),
    ],
)
def test_malformed_reference_profiles_are_refused_with_the_reason(
    body: bytes, problem: str
) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        decode_profile(body)


def test_fp32_values_land_on_the_float64_reference_values_they_came_from() -> None:
    values = np.round(np.arange(1, 10) / 10, 1)  # 0.1 .. 0.9: most are not exact in float32
    profile = build_reference_profile({"x": np.repeat(values, 3)})
    s = sketch_column(values.astype(np.float32), profile.features["x"])
    assert isinstance(s, NumericSketch)
    assert s.off_grid == 0
    assert s.counts == (0, *([1] * 9))


@pytest.mark.parametrize("column", [[1, [1, 2]], [[1, 2], [3]]])
def test_a_ragged_reference_column_is_refused_naming_it(column: list[Any]) -> None:
    """numpy's ValueError ("inhomogeneous shape") was a 500 from PUT .../reference."""
    with pytest.raises(InvalidArgument, match="reference column 'm' mixes values and lists"):
        build_reference_profile({"m": column, "x": [1, 2]})


def test_a_reference_score_is_one_value_per_row() -> None:
    """A score of one value for three rows was accepted (and profiled as if it were the
    version's whole score distribution)."""
    with pytest.raises(InvalidArgument, match="score has 1 values for 3 rows"):
        build_reference_profile({"x": [1, 2, 3]}, score=[0.1])
