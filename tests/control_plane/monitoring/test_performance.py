"""Performance tracking from the prediction log joined with feedback (property 24) and
degradation alerts against the registered card's baseline (property 25), both backends."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from control_plane.monitoring.build import Monitoring, build_monitoring
from control_plane.monitoring.models import AlertType, FeatureDetail
from control_plane.monitoring.performance import degradation
from control_plane.monitoring.performance_models import MetricPoint, PerformanceSpec, TrackRequest
from control_plane.monitoring.performance_service import pair_of
from control_plane.monitoring.performance_store import SqlPerformanceStore
from control_plane.predictions.models import LabelledPrediction, StoredOutcome
from control_plane.predictions.service import PredictionService
from control_plane.predictions.store import SqlPredictionStore
from control_plane.registry.service import RegistryService
from control_plane.scheduler import ManualClock
from modelyard.errors import NotFound
from modelyard.prediction_log import PredictionRecord
from modelyard.storage import Database
from tests.conftest import SyncDatabase
from tests.control_plane.monitoring import helpers
from tests.control_plane.monitoring.performance_helpers import log_and_label
from tests.control_plane.registry.helpers import DEVELOPER, card, make_registry, registration

WINDOW = TrackRequest(since=helpers.T0 - dt.timedelta(hours=1), until=helpers.T0)
BASELINE = [
    {"type": "accuracy", "value": 0.9},
    {"type": "roc_auc", "value": 0.95},
    {"type": "log_loss", "value": 0.3},
]


def _build(
    database: Database, registry: RegistryService | None
) -> tuple[Monitoring, PredictionService]:
    predictions = PredictionService(database, SqlPredictionStore())
    monitoring = build_monitoring(
        helpers.settings(),
        database,
        clock=ManualClock(helpers.T0),
        predictions=predictions,
        registry=registry,
    )
    return monitoring, predictions


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(40, 400),
    quality=st.floats(0.0, 0.9),
    share=st.floats(0.3, 1.0),
    seed=st.integers(0, 2**16),
)
def test_property_24_performance_metric_tracking(
    sync_database: SyncDatabase, rows: int, quality: float, share: float, seed: int
) -> None:
    run = sync_database.run
    monitoring, predictions = _build(sync_database.database, None)
    model = sync_database.unique("m")
    labels, scores = run(
        log_and_label(
            sync_database.database,
            predictions,
            model,
            1,
            rows=rows,
            quality=quality,
            labelled_share=share,
            seed=seed,
        )
    )
    assert monitoring.performance is not None
    result = run(monitoring.performance.track(model, 1, WINDOW))
    assert result.n == len(labels)
    assert result.unlabelled == rows - len(labels)
    if len(labels) < PerformanceSpec().min_samples:
        assert result.metrics == {}
        return
    predicted = [int(s >= 0.5) for s in scores]
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(labels, predicted, zero_division=0))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(labels, scores, labels=[0, 1]))
    if len(set(labels)) == 2:
        assert result.metrics["auc"] == pytest.approx(skm.roc_auc_score(labels, scores))
    run(monitoring.performance.track(model, 1, WINDOW))  # tracked again: replaced, not doubled
    series = run(monitoring.performance.series(model, 1))
    assert {p.metric: p.value for p in series} == pytest.approx(result.metrics)
    assert len(series) == len(result.metrics)
    assert all(p.n == len(labels) and p.window_end == helpers.T0 for p in series)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(quality=st.sampled_from([0.0, 0.2, 0.95]), seed=st.integers(0, 2**16))
def test_property_25_performance_degradation_alerts(
    sync_database: SyncDatabase, tmp_path: Path, quality: float, seed: int
) -> None:
    run = sync_database.run
    registry = make_registry(sync_database.database, tmp_path)
    monitoring, predictions = _build(sync_database.database, registry)
    assert monitoring.performance is not None
    model = sync_database.unique("m")
    version = run(registry.register(model, registration(card=card(metrics=BASELINE)), DEVELOPER))
    run(
        log_and_label(
            sync_database.database,
            predictions,
            model,
            version.version,
            rows=300,
            quality=quality,
            labelled_share=1.0,
            seed=seed,
        )
    )
    result = run(monitoring.performance.track(model, version.version, WINDOW))
    assert result.baseline == {"accuracy": 0.9, "auc": 0.95, "log_loss": 0.3}
    alerts = run(monitoring.alerts.list_alerts(model=model))
    expected = sorted(
        name
        for name, base in result.baseline.items()
        if (base - result.metrics[name] if name != "log_loss" else result.metrics[name] - base)
        > 0.05 * base
    )
    assert result.degraded == expected
    if not expected:
        assert alerts == []
        assert result.alert_id is None
        return
    [alert] = alerts
    assert alert.type is AlertType.PERFORMANCE_DEGRADATION
    assert alert.id == result.alert_id
    details = {d.feature: d for d in alert.details}
    assert set(details) == {"accuracy", "auc", "log_loss"}
    for name, detail in details.items():
        assert detail.baseline == result.baseline[name]
        assert detail.threshold == 0.05
        assert detail.flagged == (name in expected)
    if quality == 0.0:
        assert "accuracy" in expected  # random scores are far below a 0.9 baseline


async def test_specs_regression_and_too_few_samples(database: Database) -> None:
    monitoring, predictions = _build(database, None)
    assert monitoring.performance is not None
    spec = PerformanceSpec(
        task="regression", prediction_output="probabilities", score_index=1, min_samples=10
    )
    await monitoring.performance.set_spec("reg", spec)
    assert await monitoring.performance.spec("reg") == spec
    assert await monitoring.performance.spec("other") == PerformanceSpec()
    labels, _ = await log_and_label(
        database, predictions, "reg", 1, rows=50, quality=0.5, labelled_share=1.0, seed=1
    )
    result = await monitoring.performance.track("reg", 1, WINDOW)
    assert set(result.metrics) == {"mae", "rmse"}
    assert result.n == len(labels)
    few = await monitoring.performance.track("churn", 3, WINDOW)  # nothing logged
    assert few.metrics == {}
    assert few.n == 0


async def test_one_versions_unexpected_error_does_not_stop_the_tracking(
    database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only ModelyardError was skipped before: any other error of one version ended the pass
    for every version after it."""
    monitoring, predictions = _build(database, None)
    performance = monitoring.performance
    assert performance is not None
    await log_and_label(
        database, predictions, "churn", 1, rows=50, quality=0.5, labelled_share=1.0, seed=1
    )
    real = performance.track

    async def track(model: str, version: int, *args: Any, **kwargs: Any) -> Any:
        if model == "aaa":
            raise RuntimeError("injected: a bug on one version's data")
        return await real(model, version, *args, **kwargs)

    monkeypatch.setattr(performance, "track", track)
    results = await performance.track_all([("aaa", 1), ("churn", 1)])
    assert len(results) == 1
    assert results[0].n > 0
    assert "performance tracking of aaa v1 failed" in caplog.text


def test_numbers_too_large_or_small_to_measure_leave_stored_results_readable() -> None:
    """A prediction of 1e200 made the window's RMSE infinite, and a card baseline of 5e-324 the
    relative drop: JSON carries neither (``null``), so the metric point or the alert could not
    be read back (a 500 on every later read)."""
    spec = PerformanceSpec(task="regression", prediction_output="y")

    def labelled(prediction: float, target: float) -> LabelledPrediction:
        moment = helpers.T0
        record = PredictionRecord(
            request_id="r", row_index=0, created_at=moment, model="m", version=1,
            variant="none", protocol="http", latency_ms=1.0, inputs={}, outputs={"y": prediction},
        )  # fmt: skip
        outcome = StoredOutcome(value=target, received_at=moment, updated_at=moment, writes=1)
        return LabelledPrediction(record=record, outcome=outcome)

    assert pair_of(labelled(2.0, 1.5), spec) == (1.5, 2.0)
    assert pair_of(labelled(1e200, 1.5), spec) is None
    assert pair_of(labelled(2.0, -1e100), spec) is None
    drop = degradation("rmse", 0.5, baseline=5e-324, threshold=0.1)
    assert drop.flagged
    assert math.isfinite(drop.score)
    assert msgspec.json.decode(msgspec.json.encode(drop), type=FeatureDetail) == drop


def _labelled(label: Any, score: float = 0.9) -> LabelledPrediction:
    moment = helpers.T0
    record = PredictionRecord(
        request_id="r", row_index=0, created_at=moment, model="m", version=1, variant="none",
        protocol="http", latency_ms=1.0, inputs={}, outputs={"probabilities": [1 - score, score]},
    )  # fmt: skip
    outcome = StoredOutcome(label=label, received_at=moment, updated_at=moment, writes=1)
    return LabelledPrediction(record=record, outcome=outcome)


def test_an_integral_label_is_its_class_whatever_its_type() -> None:
    """A label of 1.0 read back as 1 from SQLite's JSON column and as 1.0 from PostgreSQL's, and
    only SQLite counted it as the positive class (a fuzz: accuracy 0.333 against 0.25)."""
    spec = PerformanceSpec()
    for label in (1, 1.0, "1", True):
        assert pair_of(_labelled(label), spec) == (1.0, 0.9), label
    for label in (0, 0.0, "0", False, 1.5, "1.0", 2.0):
        assert pair_of(_labelled(label), spec) == (0.0, 0.9), label


async def test_tracking_an_unknown_version_stores_no_points(
    database: Database, tmp_path: Path
) -> None:
    """It answered 404, after storing the window's points for the version that does not exist."""
    registry = make_registry(database, tmp_path)
    monitoring, predictions = _build(database, registry)
    assert monitoring.performance is not None
    await log_and_label(
        database, predictions, "churn", 7, rows=50, quality=0.5, labelled_share=1.0, seed=1
    )
    with pytest.raises(NotFound):
        await monitoring.performance.track("churn", 7, WINDOW)
    assert await monitoring.performance.series("churn", 7) == []


async def test_counts_beyond_32_bits_are_stored(database: Database) -> None:
    """A window's labelled rows (and a drift report's served rows) were INTEGER columns: on
    PostgreSQL a window of 2**31 rows or more could not be stored (monitoring_0003)."""
    store = SqlPerformanceStore()
    window_end = helpers.T0 + dt.timedelta(days=90)
    point = MetricPoint(
        model="m", version=1, window_start=helpers.T0, window_end=window_end, metric="accuracy",
        value=0.5, n=2**31,
    )  # fmt: skip
    async with database.write() as conn:
        await store.put_points(conn, [point], helpers.T0)
    async with database.read() as conn:
        assert await store.points(conn, "m", 1, None, None, 10) == [point]
