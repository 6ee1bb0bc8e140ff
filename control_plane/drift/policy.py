"""Per-feature and dataset drift verdicts from a reference profile and sketches (pure).

The default method is Evidently 0.7's (``_get_default_stattest``), on the non-missing values:

===================  ==========================  ====================================
reference rows       numeric                     categorical
===================  ==========================  ====================================
<= 1000              KS; chi-square if <= 5       chi-square; z-test if <= 2 values
                     values, z-test if <= 2
> 1000               normed Wasserstein;          Jensen-Shannon
                     Jensen-Shannon if <= 5
===================  ==========================  ====================================

where "values" counts the distinct values of reference and current together. Thresholds are
0.05 for p-values and 0.1 for distances; the dataset drifts when at least half of the input
features drifted. Every method and threshold can be overridden (:class:`DriftPolicy`).

>>> import numpy as np
>>> from modelyard.sketches import build_reference_profile, sketch_column
>>> rng = np.random.default_rng(11)
>>> abc = ["a", "b", "c"]
>>> ref = build_reference_profile({"x": rng.normal(size=800), "c": rng.choice(abc, 800)})
>>> cur = {"x": sketch_column(rng.normal(1.0, size=300), ref.features["x"]),
...        "c": sketch_column(rng.choice(abc, 300), ref.features["c"])}
>>> r = feature_drift("x", ref.features["x"], cur["x"])
>>> r.method.value, r.drifted
('ks', True)
>>> feature_drift("c", ref.features["c"], cur["c"]).method.value
'chisquare'
"""

from __future__ import annotations

import numpy as np

from control_plane.drift.models import (
    DatasetDriftResult,
    DriftMethod,
    DriftPolicy,
    FeatureDriftResult,
)
from control_plane.drift.projection import (
    histogram_on,
    on_profile_bins,
    profile_intervals,
    sketch_intervals,
    sturges_edges,
)
from control_plane.drift.statistics import (
    TestResult,
    chi_square_test,
    jensen_shannon,
    ks_test,
    psi,
    wasserstein,
    z_test,
)
from modelyard.errors import InvalidArgument
from modelyard.sketches import (
    CategoricalProfile,
    CategoricalSketch,
    FeatureProfile,
    FeatureSketch,
    NumericProfile,
    NumericSketch,
    ReferenceProfile,
    WindowSketches,
)

SMALL_REFERENCE = 1000
"""Evidently switches from tests to distances above this many reference values."""

SCORE = "score"
"""The policy key and result name of the prediction score."""

_OTHER = "\x00other"


def distinct_values(profile: FeatureProfile, sketch: FeatureSketch) -> int:
    """Distinct values of reference and current together (as Evidently counts them).

    Numeric: the reference's distinct values when its edges are exact, plus the current's
    values off those points (each assumed distinct, at most 6 counted: the rule only asks
    about <= 5); many when the edges are quantiles.
    """
    if isinstance(profile, CategoricalProfile):
        keys, _, _ = _aligned_categories(profile, _categorical(sketch))
        return len(keys)
    if not profile.exact:
        return SMALL_REFERENCE + 1
    off = sketch.off_grid if isinstance(sketch, NumericSketch) else 0
    return len(profile.edges) + min(off, 6)


def default_method(profile: FeatureProfile, sketch: FeatureSketch) -> DriftMethod:
    """Evidently 0.7's default test for a feature (table in the module docstring)."""
    values = distinct_values(profile, sketch)
    numeric = isinstance(profile, NumericProfile)
    if profile.n <= SMALL_REFERENCE:
        if values <= 2:
            return DriftMethod.Z
        return DriftMethod.CHI_SQUARE if values <= 5 or not numeric else DriftMethod.KS
    if numeric and values > 5:
        return DriftMethod.WASSERSTEIN
    return DriftMethod.JENSEN_SHANNON


def feature_drift(
    name: str,
    profile: FeatureProfile,
    sketch: FeatureSketch,
    *,
    method: DriftMethod | None = None,
    threshold: float | None = None,
) -> FeatureDriftResult:
    """Judge one feature's window against its reference.

    Raises:
        InvalidArgument: KS or Wasserstein on a categorical feature, or a sketch whose kind
            differs from the profile's.
    """
    method = method or default_method(profile, sketch)
    threshold = method.default_threshold if threshold is None else threshold
    kind = "numeric" if isinstance(profile, NumericProfile) else "categorical"
    if sketch.n == 0 or profile.n == 0:
        return FeatureDriftResult(
            feature=name, kind=kind, method=method, statistic=None, score=None,
            threshold=threshold, drifted=False, reference_size=profile.n,
            current_size=sketch.n, current_missing=sketch.missing,
        )  # fmt: skip
    statistic, score = _measure(method, profile, sketch)
    if method is DriftMethod.KS:
        drifted = score <= threshold
    else:
        drifted = score < threshold if method.is_p_value else score >= threshold
    return FeatureDriftResult(
        feature=name, kind=kind, method=method, statistic=statistic, score=score,
        threshold=threshold, drifted=bool(drifted), reference_size=profile.n,
        current_size=sketch.n, current_missing=sketch.missing,
    )  # fmt: skip


def _measure(
    method: DriftMethod, profile: FeatureProfile, sketch: FeatureSketch
) -> tuple[float, float]:
    """(statistic, score) of a method."""
    if method in (DriftMethod.KS, DriftMethod.WASSERSTEIN):
        if not isinstance(profile, NumericProfile):
            raise InvalidArgument(f"{method.value} applies to numeric features only")
        numeric = _numeric(sketch)
        if method is DriftMethod.KS:
            result = _ks(profile, numeric)
            return result.statistic, result.p_value
        distance = _wasserstein_norm(profile, numeric)
        return distance, distance
    ref, cur = _histograms(profile, sketch)
    if method is DriftMethod.PSI:
        value = psi(ref, cur)
        return value, value
    if method is DriftMethod.JENSEN_SHANNON:
        value = jensen_shannon(ref, cur)
        return value, value
    keep = (ref > 0) | (cur > 0)
    test = (z_test if method is DriftMethod.Z else chi_square_test)(ref[keep], cur[keep])
    return test.statistic, test.p_value


def _numeric(sketch: FeatureSketch) -> NumericSketch:
    if not isinstance(sketch, NumericSketch):
        raise InvalidArgument("a categorical sketch cannot be compared with a numeric reference")
    return sketch


def _categorical(sketch: FeatureSketch) -> CategoricalSketch:
    if not isinstance(sketch, CategoricalSketch):
        raise InvalidArgument("a numeric sketch cannot be compared with a categorical reference")
    return sketch


def _ks(p: NumericProfile, s: NumericSketch) -> TestResult:
    counts, _ = on_profile_bins(p, s)
    return ks_test(
        np.asarray(p.counts, dtype=np.float64),
        counts,
        reference_on_edges=p.exact,
        current_on_edges=_on_edges(p, s),
    )


def _on_edges(p: NumericProfile, s: NumericSketch) -> np.ndarray | None:
    """Current values on the reference's points, per bin (when counted on its exact edges)."""
    if p.exact and s.histogram is None and s.edges == p.edges and s.on_edges:
        return np.asarray(s.on_edges, dtype=np.float64)
    return None


def _wasserstein_norm(p: NumericProfile, s: NumericSketch) -> float:
    counts, sums = on_profile_bins(p, s)
    edges = np.asarray(p.edges)
    low = min(s.min if s.min is not None else p.min, p.min)
    high = max(s.max if s.max is not None else p.max, p.max)
    lo = np.concatenate([[low], edges])
    hi = np.concatenate([edges, [high]])
    ref = (np.asarray(p.counts, dtype=np.float64), np.asarray(p.sums))
    distance = wasserstein(
        lo, hi, ref, (counts, sums), reference_on_edges=p.exact, current_on_edges=_on_edges(p, s)
    )
    return distance / max(p.std, 0.001)


def _histograms(profile: FeatureProfile, sketch: FeatureSketch) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current histograms as Evidently's ``get_binned_data`` forms them."""
    if isinstance(profile, CategoricalProfile):
        _, ref, cur = _aligned_categories(profile, _categorical(sketch))
        return ref, cur
    s = _numeric(sketch)
    if profile.exact and len(profile.edges) <= 20:
        # Evidently counts each value of a column with <= 20 distinct reference values.
        counts, _ = on_profile_bins(profile, s)
        return np.asarray(profile.counts, dtype=np.float64), counts
    low = min(profile.min, s.min if s.min is not None else profile.min)
    high = max(profile.max, s.max if s.max is not None else profile.max)
    edges = sturges_edges(low, high, profile.n + s.n)
    return histogram_on(profile_intervals(profile), edges), histogram_on(sketch_intervals(s), edges)


def _aligned_categories(
    p: CategoricalProfile, s: CategoricalSketch
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted keys present on either side with reference and current counts.

    Categories the reference profile did not keep (its ``other``) and a worker's overflow
    (the sketch's ``other``) are compared as one pooled category.
    """
    ref = dict(p.counts)
    cur: dict[str, int] = {}
    for key, count in s.counts.items():
        target = key if key in ref or p.other == 0 else _OTHER
        cur[target] = cur.get(target, 0) + count
    if p.other:
        ref[_OTHER] = p.other
    if s.other:
        cur[_OTHER] = cur.get(_OTHER, 0) + s.other
    keys = sorted(k for k in set(ref) | set(cur) if ref.get(k, 0) or cur.get(k, 0))
    return (
        keys,
        np.array([ref.get(k, 0) for k in keys], dtype=np.float64),
        np.array([cur.get(k, 0) for k in keys], dtype=np.float64),
    )


def dataset_drift(
    reference: ReferenceProfile, window: WindowSketches, policy: DriftPolicy | None = None
) -> DatasetDriftResult:
    """Judge every input feature of the reference (and the score) on a window's sketches.

    A feature the window has no sketch of counts as "no current data" (not drifted, not in
    the share).

    Raises:
        InvalidArgument: as :func:`feature_drift`.
    """
    policy = policy or DriftPolicy()
    results = [
        _judge(name, prof, window.features.get(name), policy)
        for name, prof in sorted(reference.features.items())
    ]
    score = None
    if reference.score is not None and window.score is not None:
        score = _judge(SCORE, reference.score, window.score, policy)
    judged = [r for r in results if r.score is not None]
    drifted = sum(r.drifted for r in judged)
    share = drifted / len(judged) if judged else 0.0
    return DatasetDriftResult(
        features=results,
        score=score,
        drifted_features=drifted,
        share=share,
        drift_share=policy.drift_share,
        drifted=bool(judged) and share >= policy.drift_share,
    )


def _judge(
    name: str, profile: FeatureProfile, sketch: FeatureSketch | None, policy: DriftPolicy
) -> FeatureDriftResult:
    own = policy.features.get(name)
    method = (own.method if own else None) or policy.method
    threshold = own.threshold if own and own.threshold is not None else policy.threshold
    if sketch is None:
        sketch = NumericSketch() if isinstance(profile, NumericProfile) else CategoricalSketch()
    return feature_drift(name, profile, sketch, method=method, threshold=threshold)


__all__ = ["SCORE", "dataset_drift", "default_method", "distinct_values", "feature_drift"]
