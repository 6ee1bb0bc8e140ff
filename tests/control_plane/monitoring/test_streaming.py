"""Streaming detectors over the prediction log, both backends: a score shift and an error
jump raise streaming_drift alerts; values arriving over several passes are fed once each."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np

from control_plane.monitoring.build import build_monitoring
from control_plane.monitoring.models import AlertType
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


async def test_score_and_error_changes_raise_streaming_alerts(database: Database) -> None:
    clock = ManualClock(helpers.T0)
    predictions = PredictionService(database, SqlPredictionStore())
    monitoring = build_monitoring(
        helpers.settings(), database, clock=clock, predictions=predictions
    )
    streaming = monitoring.streaming
    assert streaming is not None
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
