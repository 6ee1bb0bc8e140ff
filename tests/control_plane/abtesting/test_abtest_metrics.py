"""Property 20: a variant's metrics come only from its own records — over the real prediction
log and outcomes table, on SQLite and PostgreSQL, with every kind of neighbouring record
(the other variant, another model, the same version unrouted or as a shadow copy, records
from before the test's phase) in the same tables."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.abtesting.analysis import variant_metrics
from control_plane.abtesting.models import Metric, MetricKind, MetricSummary, Variant
from control_plane.abtesting.source import PredictionLogSource
from control_plane.predictions.models import Outcome
from control_plane.predictions.service import PredictionService
from control_plane.predictions.store import SqlPredictionStore
from modelyard.enums import ModelVariant
from modelyard.prediction_log import PredictionRecord, prediction_log, record_values
from tests.conftest import SyncDatabase

METRICS = (
    Metric(name="conversion", kind=MetricKind.CONVERSION),
    Metric(name="revenue", kind=MetricKind.VALUE),
    Metric(name="accuracy", kind=MetricKind.LABEL_MATCH, output="label"),
    Metric(name="latency", kind=MetricKind.LATENCY_MS, higher_is_better=False),
)

row = st.tuples(
    st.booleans(),  # converted
    st.floats(0, 100, allow_nan=False),  # value
    st.integers(0, 1),  # label given
    st.floats(0.1, 50, allow_nan=False),  # latency
)


def _records(
    prefix: str,
    rows: list[tuple[bool, float, int, float]],
    *,
    model: str,
    version: int,
    variant: str,
    at: dt.datetime,
    shadow: bool = False,
) -> tuple[list[PredictionRecord], list[Outcome]]:
    records, outcomes = [], []
    for i, (converted, value, label, latency) in enumerate(rows):
        request_id = f"{prefix}-{i}"
        records.append(
            PredictionRecord(
                request_id=request_id,
                row_index=0,
                created_at=at + dt.timedelta(milliseconds=i),
                model=model,
                version=version,
                variant=variant,
                shadow=shadow,
                protocol="http",
                latency_ms=latency,
                inputs={"f0": float(i)},
                outputs={"label": i % 2},
            )
        )
        if not shadow:
            outcomes.append(
                Outcome(request_id=request_id, conversion=converted, value=value, label=label)
            )
    return records, outcomes


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    control=st.lists(row, min_size=0, max_size=25),
    treatment=st.lists(row, min_size=0, max_size=25),
    noise=st.lists(row, min_size=1, max_size=10),
)
def test_property_20_ab_metrics_come_only_from_the_variants_own_records(
    sync_database: SyncDatabase,
    control: list[tuple[bool, float, int, float]],
    treatment: list[tuple[bool, float, int, float]],
    noise: list[tuple[bool, float, int, float]],
) -> None:
    db = sync_database
    model, other = db.unique("m"), db.unique("o")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    before = start - dt.timedelta(hours=1)
    p = db.unique("r")
    batches = [
        _records(f"{p}c", control, model=model, version=1, variant="control", at=start),
        _records(f"{p}t", treatment, model=model, version=2, variant="treatment", at=start),
        # Neighbours that must never count:
        _records(f"{p}o", noise, model=other, version=1, variant="control", at=start),
        _records(f"{p}n", noise, model=model, version=1, variant="none", at=start),
        _records(f"{p}s", noise, model=model, version=2, variant="shadow", at=start, shadow=True),
        _records(f"{p}b", noise, model=model, version=1, variant="control", at=before),
        _records(f"{p}x", noise, model=model, version=2, variant="control", at=start),
    ]
    predictions = PredictionService(db.database, SqlPredictionStore())

    async def scenario() -> None:
        async with db.database.write() as conn:
            for records, _ in batches:
                if records:
                    await conn.execute(prediction_log.insert(), [record_values(r) for r in records])
        outcomes = [o for _, batch in batches for o in batch]
        if outcomes:
            await predictions.record_feedback(outcomes)
        source = PredictionLogSource(predictions)
        for (version, role), rows in (
            ((1, ModelVariant.CONTROL), control),
            ((2, ModelVariant.TREATMENT), treatment),
        ):
            got = await source.observations(model, version, role, start, None)
            variant = Variant(version=version, weight=0.5, role=role)
            metrics = variant_metrics(variant, got, METRICS, 0.05)
            assert {o.variant for o in got} <= {role}
            assert {o.version for o in got} <= {version}
            assert metrics.requests == len(rows)
            _check_against_own_rows(metrics.metrics, rows)

    db.run(scenario())


def _check_against_own_rows(
    summaries: tuple[MetricSummary, ...], rows: list[tuple[bool, float, int, float]]
) -> None:
    by_name = {s.name: s for s in summaries}
    expected = {
        "conversion": [1.0 if c else 0.0 for c, _, _, _ in rows],
        "revenue": [v for _, v, _, _ in rows],
        "accuracy": [1.0 if lab == i % 2 else 0.0 for i, (_, _, lab, _) in enumerate(rows)],
        "latency": [lat for _, _, _, lat in rows],
    }
    for name, values in expected.items():
        summary = by_name[name]
        assert summary.units == len(values)
        if values:
            assert summary.mean is not None
            assert np.isclose(summary.mean.estimate, float(np.mean(values)), rtol=1e-9)
        else:
            assert summary.mean is None
