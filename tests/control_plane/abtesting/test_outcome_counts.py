"""A variant counts every outcome, whatever its value (a label of 0 is an outcome too)."""

from __future__ import annotations

import datetime as dt

from control_plane.abtesting.analysis import Observation, variant_metrics
from control_plane.abtesting.models import Metric, MetricKind, Variant
from modelyard.enums import ModelVariant


def test_falsy_outcomes_are_counted() -> None:
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    observations = [
        Observation(
            request_id=str(i),
            version=1,
            variant=ModelVariant.CONTROL,
            created_at=now,
            latency_ms=1.0,
            outputs={"label": 0},
            label=i % 2,
            converted=None if i < 4 else False,
            value=None if i < 4 else 0.0,
        )
        for i in range(6)
    ]
    variant = Variant(version=1, weight=1.0, role=ModelVariant.CONTROL)
    metric = Metric(name="accuracy", kind=MetricKind.LABEL_MATCH, output="label")
    measured = variant_metrics(variant, observations, [metric], alpha=0.05)
    assert measured.outcomes == 6
    accuracy = measured.metrics[0]
    assert accuracy.units == 6
    assert accuracy.mean is not None
    assert accuracy.mean.estimate == 0.5
