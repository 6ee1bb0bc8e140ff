"""Prediction records as the servers log them, and outcomes as clients send them."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np

from control_plane.predictions.models import Outcome
from control_plane.predictions.service import PredictionService
from modelyard.prediction_log import PredictionRecord, prediction_log, record_values
from modelyard.storage import Database
from tests.control_plane.monitoring.helpers import T0


async def log_and_label(
    database: Database,
    predictions: PredictionService,
    model: str,
    version: int,
    *,
    rows: int,
    quality: float,
    labelled_share: float,
    seed: int,
) -> tuple[list[int], list[float]]:
    """Log ``rows`` binary predictions in the hour before T0 and send outcomes for a share of
    them; ``quality`` in [0, 1] moves the scores towards the truth. Returns the labelled pairs."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(rows) < 0.4).astype(int)
    noise = rng.random(rows)
    scores = np.clip(quality * truth + (1 - quality) * noise, 0.001, 0.999)
    records = []
    for i in range(rows):
        records.append(
            PredictionRecord(
                request_id=f"r-{uuid.uuid4().hex}",
                row_index=0,
                created_at=T0 - dt.timedelta(minutes=59) + dt.timedelta(seconds=i % 3000),
                model=model,
                version=version,
                variant="none",
                protocol="http",
                latency_ms=1.0,
                inputs={"x": float(noise[i])},
                outputs={
                    "label": int(scores[i] >= 0.5),
                    "probabilities": [1 - scores[i], scores[i]],
                },
            )
        )
    async with database.write() as conn:
        await conn.execute(prediction_log.insert(), [record_values(r) for r in records])
    labelled = rng.random(rows) < labelled_share
    outcomes = [
        Outcome(request_id=r.request_id, label=int(y))
        for r, y, keep in zip(records, truth, labelled, strict=True)
        if keep
    ]
    if outcomes:
        await predictions.record_feedback(outcomes)
    pairs = [(int(y), float(s)) for y, s, keep in zip(truth, scores, labelled, strict=True) if keep]
    return [y for y, _ in pairs], [s for _, s in pairs]
