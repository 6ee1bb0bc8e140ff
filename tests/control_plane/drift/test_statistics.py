"""Drift statistics from sketches against the same statistics on the raw samples (scipy)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats

from control_plane.drift import (
    DriftMethod,
    DriftPolicy,
    FeaturePolicy,
    dataset_drift,
    default_method,
    feature_drift,
)
from modelyard.errors import InvalidArgument
from modelyard.sketches import (
    CategoricalSketch,
    WindowSketches,
    build_reference_profile,
    merge_features,
    profile_column,
    sketch_column,
)

M = DriftMethod
T0 = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def _sketch_in_parts(values: np.ndarray, profile: object, parts: int = 3) -> object:
    pieces = [sketch_column(chunk, profile) for chunk in np.array_split(values, parts)]  # type: ignore[arg-type]
    merged = pieces[0]
    for piece in pieces[1:]:
        merged = merge_features(merged, piece)
    return merged


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shift"), [(200, 150, 0.0), (900, 400, 0.15), (1000, 12_000, 0.05)]
)
def test_ks_on_an_exact_profile_equals_scipy_on_the_raw_samples(
    n_ref: int, n_cur: int, shift: float
) -> None:
    rng = np.random.default_rng(n_ref)
    ref, cur = rng.normal(size=n_ref), rng.normal(shift, 1.1, size=n_cur)
    profile = profile_column(ref)
    result = feature_drift("x", profile, _sketch_in_parts(cur, profile), method=M.KS)  # type: ignore[arg-type]
    expected = stats.ks_2samp(ref, cur)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.score == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)


@pytest.mark.parametrize(
    ("n_ref", "shift", "scale"), [(500, 0.0, 1.0), (5000, 0.1, 1.0), (20_000, 0.3, 2.0)]
)
def test_normed_wasserstein_from_bins_matches_scipy_within_a_percent(
    n_ref: int, shift: float, scale: float
) -> None:
    rng = np.random.default_rng(n_ref)
    ref, cur = rng.lognormal(size=n_ref), rng.lognormal(shift, scale, size=3000)
    profile = profile_column(ref)
    result = feature_drift("x", profile, _sketch_in_parts(cur, profile), method=M.WASSERSTEIN)  # type: ignore[arg-type]
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert result.score == pytest.approx(expected, rel=1e-2)


def test_a_server_without_reference_is_compared_through_its_log_histogram() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(10, 2, size=5000), rng.normal(10.5, 2, size=4000)
    profile = profile_column(ref)
    reference_free = _sketch_in_parts(cur, None)
    result = feature_drift("x", profile, reference_free, method=M.WASSERSTEIN)  # type: ignore[arg-type]
    assert result.score == pytest.approx(
        stats.wasserstein_distance(ref, cur) / np.std(ref), rel=0.02
    )
    ks = feature_drift("x", profile, reference_free, method=M.KS)  # type: ignore[arg-type]
    assert ks.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=0.02)


def test_chi_square_and_z_test_equal_scipy_on_value_counts() -> None:
    rng = np.random.default_rng(9)
    ref, cur = rng.choice(["a", "b", "c"], 600, p=[0.5, 0.3, 0.2]), rng.choice(["a", "b", "c"], 400)
    profile = profile_column(ref)
    result = feature_drift("c", profile, sketch_column(cur, profile))
    keys = ["a", "b", "c"]
    f_obs = [int((cur == k).sum()) for k in keys]
    f_exp = [int((ref == k).sum()) * len(cur) / len(ref) for k in keys]
    assert result.method is M.CHI_SQUARE
    assert result.score == pytest.approx(stats.chisquare(f_obs, f_exp).pvalue, rel=1e-9)
    flag = profile_column(np.array([0, 1] * 300), kind="categorical")
    z = feature_drift("f", flag, sketch_column(np.array([1.0] * 230 + [0.0] * 170), flag))
    p1, p2, pooled = 0.5, 170 / 400, (300 + 170) / 1000
    expected = 2 * (
        1 - stats.norm.cdf(abs(p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 600 + 1 / 400)))
    )
    assert z.method is M.Z
    assert z.score == pytest.approx(expected, rel=1e-9)
    assert z.drifted


def test_a_category_the_reference_never_had_is_drift_by_chi_square() -> None:
    profile = profile_column(np.array(["a", "b", "c"] * 100))
    result = feature_drift("c", profile, CategoricalSketch(n=3, counts={"a": 1, "b": 1, "zz": 1}))
    assert (result.score, result.drifted) == (0.0, True)


def test_default_methods_follow_evidently_by_reference_size_kind_and_distinct_values() -> None:
    rng = np.random.default_rng(2)
    cases = [
        (rng.normal(size=1000), M.KS),
        (rng.normal(size=1001), M.WASSERSTEIN),
        (rng.integers(0, 4, 1000).astype(float), M.CHI_SQUARE),
        (rng.integers(0, 2, 1000).astype(float), M.Z),
        (rng.integers(0, 4, 5000).astype(float), M.JENSEN_SHANNON),
        (rng.choice(["a", "b", "c"], 1000), M.CHI_SQUARE),
        (rng.choice(["a", "b"], 1000), M.Z),
        (rng.choice(["a", "b"], 1001), M.JENSEN_SHANNON),
    ]
    for values, method in cases:
        profile = profile_column(values)
        assert default_method(profile, sketch_column(values[:50], profile)) is method


def test_dataset_drift_counts_the_share_and_honours_overrides() -> None:
    rng = np.random.default_rng(4)
    columns = {name: rng.normal(size=2000) for name in ("a", "b", "c", "d")}
    reference = build_reference_profile(columns, score=rng.uniform(size=2000))
    current = {
        "a": rng.normal(1, size=5000),
        "b": rng.normal(1, size=5000),
        "c": rng.normal(size=5000),
    }
    window = WindowSketches(
        model="m",
        version="1",
        start=T0,
        end=T0,
        features={k: sketch_column(v, reference.features[k]) for k, v in current.items()},
        score=sketch_column(rng.uniform(size=5000), reference.score),
    )
    result = dataset_drift(reference, window)
    assert [r.drifted for r in result.features] == [True, True, False, False]
    assert result.features[3].score is None  # "d" had no current data: not judged
    assert (result.drifted_features, result.share, result.drifted) == (2, 2 / 3, True)
    assert result.score is not None
    assert not result.score.drifted
    strict = DriftPolicy(
        features={"a": FeaturePolicy(method=M.PSI, threshold=5.0)}, drift_share=0.7
    )
    again = dataset_drift(reference, window, strict)
    assert again.features[0].method is M.PSI
    assert not again.features[0].drifted
    assert not again.drifted


def test_ks_on_a_categorical_feature_is_refused() -> None:
    profile = profile_column(np.array(["a", "b"] * 10))
    with pytest.raises(InvalidArgument, match="numeric features only"):
        feature_drift("c", profile, sketch_column(np.array(["a"]), profile), method=M.KS)
