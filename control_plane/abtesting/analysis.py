"""From observations to per-variant metrics and a recommendation (pure, no I/O).

An :class:`Observation` is one answered request of one variant with its outcome, if any. The
service fetches each variant's observations separately (model, version, variant and the test's
current phase), so a variant's metrics are computed only from its own records (property 20):
:func:`variant_metrics` sees nothing else.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
from scipy import stats

from control_plane.abtesting.models import (
    Interval,
    Metric,
    MetricKind,
    MetricSummary,
    TestMode,
    TimePoint,
    Variant,
    VariantMetrics,
)
from control_plane.abtesting.recommendation import MetricResult, Recommendation, recommend
from control_plane.abtesting.sequential import mixture_variance, sequential_comparison
from control_plane.abtesting.statistics import (
    Comparison,
    benjamini_hochberg,
    compare_means,
    compare_rates,
    sample_ratio_mismatch,
)
from modelyard.enums import ModelVariant

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from control_plane.abtesting.models import ABTest


class Observation(msgspec.Struct, kw_only=True, frozen=True):
    """One logged row of an answered request and the row's outcome (if any)."""

    request_id: str
    row_index: int = 0
    version: int
    variant: ModelVariant
    created_at: dt.datetime
    latency_ms: float
    outputs: dict[str, Any] = {}
    converted: bool | None = None
    value: float | None = None
    label: Any = None


def unit_values(metric: Metric, observations: Sequence[Observation]) -> NDArray[np.float64]:
    """One value per unit of ``metric`` (see :class:`~.models.MetricKind`).

    >>> now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    >>> obs = [Observation(request_id=str(i), version=1, variant=ModelVariant.CONTROL,
    ...                    created_at=now, latency_ms=2.0 + i, converted=i % 2 == 0)
    ...        for i in range(4)]
    >>> unit_values(Metric(name="c", kind=MetricKind.CONVERSION), obs).tolist()
    [1.0, 0.0, 1.0, 0.0]
    >>> unit_values(Metric(name="l", kind=MetricKind.LATENCY_MS), obs).tolist()
    [2.0, 3.0, 4.0, 5.0]
    """
    kind = metric.kind
    if kind is MetricKind.CONVERSION:
        values = [1.0 if o.converted else 0.0 for o in observations]
    elif kind is MetricKind.VALUE:
        values = [float(o.value) for o in observations if o.value is not None]
    elif kind is MetricKind.LATENCY_MS:
        values = [o.latency_ms for o in observations]
    else:
        output = metric.output or ""
        values = [
            1.0 if str(o.outputs.get(output)) == str(o.label) else 0.0
            for o in observations
            if o.label is not None
        ]
    return np.asarray(values, dtype=np.float64)


def summarize(metric: Metric, values: NDArray[np.float64], alpha: float) -> MetricSummary:
    """Units, mean (or rate) with its ``1 - alpha`` interval, and the variance."""
    n = int(values.size)
    if n == 0:
        return MetricSummary(name=metric.name, units=0, mean=None, variance=0.0)
    mean = float(values.mean())
    variance = float(values.var(ddof=1)) if n > 1 else 0.0
    half = float(stats.norm.ppf(1 - alpha / 2)) * (variance / n) ** 0.5
    return MetricSummary(
        name=metric.name,
        units=n,
        mean=Interval(estimate=mean, low=mean - half, high=mean + half),
        variance=variance,
    )


def variant_metrics(
    variant: Variant, observations: Sequence[Observation], metrics: Sequence[Metric], alpha: float
) -> VariantMetrics:
    """Everything measured on one variant from its own observations."""
    latencies = np.asarray([o.latency_ms for o in observations], dtype=np.float64)
    p50, p95, p99 = (
        (float(q) for q in np.percentile(latencies, [50, 95, 99]))
        if latencies.size
        else (None, None, None)
    )
    return VariantMetrics(
        version=variant.version,
        role=variant.role,
        weight=variant.weight,
        requests=len({o.request_id for o in observations}),
        outcomes=sum(
            1
            for o in observations
            if o.converted is not None or o.value is not None or o.label is not None
        ),
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        error_rate=None,
        metrics=tuple(summarize(m, unit_values(m, observations), alpha) for m in metrics),
    )


def compare(
    metric: Metric,
    control: NDArray[np.float64],
    treatment: NDArray[np.float64],
    *,
    alpha: float,
    mode: TestMode,
    minimum_sample_size: int,
) -> Comparison | None:
    """Treatment against control on one metric; None while either side has < 2 units."""
    if control.size < 2 or treatment.size < 2:
        return None
    if metric.kind.is_rate:
        fixed = compare_rates(
            int(control.sum()), control.size, int(treatment.sum()), treatment.size, alpha
        )
    else:
        fixed = compare_means(
            float(control.mean()),
            float(control.var(ddof=1)),
            control.size,
            float(treatment.mean()),
            float(treatment.var(ddof=1)),
            treatment.size,
            alpha,
        )
    if mode is TestMode.FIXED:
        return fixed
    # tau² tuned to the variance of the difference at the planned (minimum) sample size.
    per_unit = float(control.var(ddof=1) + treatment.var(ddof=1))
    target = max(per_unit, 1e-12) / max(minimum_sample_size, 2)
    return sequential_comparison(fixed, mixture_variance(target, alpha))


def recommendation_for(
    test: ABTest, observations: dict[int, Sequence[Observation]]
) -> Recommendation:
    """The recommendation of ``test`` from each variant's observations (by version)."""
    d = test.definition
    control = next(v for v in d.variants if v.role is ModelVariant.CONTROL)
    treatment = next(v for v in d.variants if v.role is ModelVariant.TREATMENT)

    def result(metric: Metric) -> MetricResult:
        comparison = compare(
            metric,
            unit_values(metric, observations[control.version]),
            unit_values(metric, observations[treatment.version]),
            alpha=d.alpha,
            mode=d.mode,
            minimum_sample_size=d.minimum_sample_size,
        )
        return MetricResult(
            name=metric.name, higher_is_better=metric.higher_is_better, comparison=comparison
        )

    secondary = [result(m) for m in d.secondary_metrics]
    adjusted = benjamini_hochberg(
        [r.comparison.p_value if r.comparison else 1.0 for r in secondary]
    )
    arms = [v for v in d.variants if v.role is not ModelVariant.SHADOW]
    # Requests are what the router assigns: the SRM check and the minimum count them.
    units = tuple(len({o.request_id for o in observations[v.version]}) for v in arms)
    return recommend(
        primary=result(d.primary_metric),
        guardrails=tuple(result(m) for m in d.guardrail_metrics),
        secondary=tuple(
            msgspec.structs.replace(r, adjusted_p_value=q)
            for r, q in zip(secondary, adjusted, strict=True)
        ),
        sample_ratio=sample_ratio_mismatch(units, [v.weight for v in arms]),
        units=units,
        minimum_sample_size=d.minimum_sample_size,
        sequential=d.mode is TestMode.SEQUENTIAL,
    )


def time_series(
    test: ABTest, observations: dict[int, Sequence[Observation]], points: int = 24
) -> tuple[TimePoint, ...]:
    """Cumulative primary-metric readings per variant at ``points`` evenly spaced times.

    Each reading uses the observations up to that time; the lift interval is the
    treatment-minus-control comparison of the test's mode at that time.
    """
    d = test.definition
    everything = [o for obs in observations.values() for o in obs]
    if not everything:
        return ()
    start = min(o.created_at for o in everything)
    end = max(o.created_at for o in everything)
    span = (end - start) / max(points - 1, 1)
    control = next(v.version for v in d.variants if v.role is ModelVariant.CONTROL)
    treatment = next(v.version for v in d.variants if v.role is ModelVariant.TREATMENT)
    series = []
    for i in range(points):
        at = start + span * i if i < points - 1 else end
        values = {
            version: unit_values(d.primary_metric, [o for o in obs if o.created_at <= at])
            for version, obs in observations.items()
        }
        comparison = compare(
            d.primary_metric,
            values[control],
            values[treatment],
            alpha=d.alpha,
            mode=d.mode,
            minimum_sample_size=d.minimum_sample_size,
        )
        lift = (
            None
            if comparison is None
            else Interval(
                estimate=comparison.absolute_lift,
                low=comparison.absolute_ci[0],
                high=comparison.absolute_ci[1],
            )
        )
        means = {str(v): float(x.mean()) if x.size else None for v, x in values.items()}
        series.append(TimePoint(at=at, means=means, lift=lift))
    return tuple(series)
