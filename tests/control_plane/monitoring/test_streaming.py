"""Streaming detectors over the prediction log, both backends: a score shift and an error
jump raise streaming_drift alerts; values arriving over several passes are fed once each."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import numpy as np
import pytest

from control_plane.monitoring.build import Monitoring, build_monitoring
from control_plane.monitoring.models import AlertType
from control_plane.monitoring.streaming import StreamingDetection
from control_plane.predictions.models import Outcome
from control_plane.predictions.service import PredictionService
from control_plane.predictions.store import SqlPredictionStore
from control_plane.scheduler import ManualClock
from modelyard.prediction_log import PredictionRecord, prediction_log, record_values
from modelyard.storage import Database
from tests.control_plane.monitoring import helpers


async def _log(database: Database, scores: np.ndarray, start: dt.datetime) -> list[str]:
    ids = [f"s-{uuid.uuid4().hex}" for _ in scores]
    records = [
        PredictionRecord(
            request_id=rid,
            row_index=0,
            created_at=start + dt.timedelta(seconds=i),
            model="churn",
            version=1,
            variant="none",
            protocol="grpc",
            latency_ms=1.0,
            inputs={},
            outputs={"probabilities": [1 - s, s]},
        )
        for i, (rid, s) in enumerate(zip(ids, scores.tolist(), strict=True))
    ]
    async with database.write() as conn:
        await conn.execute(prediction_log.insert(), [record_values(r) for r in records])
    return ids


def _streaming(database: Database) -> tuple[Monitoring, PredictionService, StreamingDetection]:
    """The monitoring feature on a manual clock, its prediction service and its detectors."""
    predictions = PredictionService(database, SqlPredictionStore())
    monitoring = build_monitoring(
        helpers.settings(), database, clock=ManualClock(helpers.T0), predictions=predictions
    )
    assert monitoring.streaming is not None
    return monitoring, predictions, monitoring.streaming


async def test_score_and_error_changes_raise_streaming_alerts(database: Database) -> None:
    monitoring, predictions, streaming = _streaming(database)
    rng = np.random.default_rng(2)
    start = helpers.T0 - dt.timedelta(minutes=50)
    steady = np.clip(rng.normal(0.3, 0.05, 1200), 0, 1)
    ids = await _log(database, steady, start)
    # outcomes that agree with the scores: small errors
    await predictions.record_feedback(
        [Outcome(request_id=i, label=int(s > 0.5)) for i, s in zip(ids, steady, strict=True)]
    )
    assert await streaming.poll([("churn", 1)]) == []
    assert await streaming.poll([("churn", 1)]) == []  # nothing new: nothing fed twice
    shifted = np.clip(rng.normal(0.7, 0.05, 600), 0, 1)
    later = await _log(database, shifted, start + dt.timedelta(minutes=25))
    # outcomes now contradict the scores: large errors
    await predictions.record_feedback([Outcome(request_id=i, label=0) for i in later])
    hits = await streaming.poll([("churn", 1)])
    assert {(h.stream, h.detector) for h in hits} >= {("score", "adwin"), ("error", "adwin")}
    assert all(h.index >= 1200 for h in hits)  # after the change, in each stream
    alerts = await monitoring.alerts.list_alerts(type=AlertType.STREAMING_DRIFT)
    sources = {(a.details[0].feature, a.details[0].method) for a in alerts}
    assert sources == {(h.stream, h.detector) for h in hits}
    assert all(a.model == "churn" and a.version == 1 for a in alerts)


async def test_a_failed_alert_is_raised_at_the_next_poll_and_one_version_does_not_stop_others(
    database: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, an alert that failed to be written was lost for good (the values that made the
    detection had been fed), and one version's failure ended the poll of every later one."""
    monitoring, _, streaming = _streaming(database)
    rng = np.random.default_rng(2)
    start = helpers.T0 - dt.timedelta(minutes=50)
    await _log(database, np.clip(rng.normal(0.3, 0.05, 1200), 0, 1), start)
    await _log(
        database, np.clip(rng.normal(0.7, 0.05, 600), 0, 1), start + dt.timedelta(minutes=25)
    )
    alerts, performance = monitoring.alerts, monitoring.performance
    assert performance is not None
    real_raise = alerts.raise_alert
    real_spec = performance.spec
    calls = [0]

    async def flaky_raise(candidate: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("injected: the database is unreachable")
        return await real_raise(candidate)

    async def spec(model: str) -> Any:
        if model == "aaa-broken":
            raise RuntimeError("injected: a broken spec")
        return await real_spec(model)

    monkeypatch.setattr(alerts, "raise_alert", flaky_raise)
    monkeypatch.setattr(performance, "spec", spec)
    first = await streaming.poll([("aaa-broken", 1), ("churn", 1)])
    assert first == []  # the broken version is logged; churn's first alert failed
    assert "streaming detection of aaa-broken v1 failed" in caplog.text
    assert "streaming detection of churn v1 failed" in caplog.text
    second = await streaming.poll([("churn", 1)])  # no new values: the kept detections
    assert ("score", "adwin") in {(h.stream, h.detector) for h in second}
    listed = await alerts.list_alerts(type=AlertType.STREAMING_DRIFT)
    assert {(a.details[0].feature, a.details[0].method) for a in listed} == {
        (h.stream, h.detector) for h in second
    }
