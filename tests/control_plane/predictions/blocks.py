"""Prediction-log blocks built as an inference server builds them, and shipped the same way."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from modelyard.prediction_blocks import (
    BLOCK_COLUMNS,
    PredictionBlock,
    block_values,
    encode_block,
    prediction_log_block,
    tensor_column,
)
from modelyard.storage import Database

FEATURES = [f"f{i}" for i in range(20)]
T0 = 1_796_385_600.0
"""2026-12-04T12:00:00Z as seconds since the epoch."""


def make_block(
    key: str, *, requests: int = 2, rows: int = 3, worker: int = 0, model: str = "churn"
) -> PredictionBlock:
    """``requests`` requests of ``rows`` rows of 20 float32 features; request ``r``'s id is
    ``{key}-{r}`` and row ``j`` of it has feature ``f0 == 100 * r + j``."""
    features = np.zeros((requests * rows, len(FEATURES)), dtype=np.float32)
    for r in range(requests):
        for j in range(rows):
            features[r * rows + j, 0] = 100 * r + j
    labels = (np.arange(requests * rows) % 2).astype(np.int64)
    return PredictionBlock(
        key=key,
        model=model,
        version=1,
        worker=worker,
        input_names=["features"],
        feature_names=FEATURES,
        output_names=["label"],
        request_ids=[f"{key}-{r}" for r in range(requests)],
        times=[T0 + r for r in range(requests)],
        variants=["none"] * requests,
        routing_keys=[None] * requests,
        shadows=[False] * requests,
        protocols=["http"] * requests,
        latencies_ms=[1.5] * requests,
        rows=[rows] * requests,
        inputs=[tensor_column(features)],
        outputs=[tensor_column(labels)],
    )


async def ship(database: Database, *blocks: PredictionBlock) -> None:
    """Insert ``blocks`` into ``prediction_log_block`` in one transaction, as a server does."""
    await ship_rows(database, *(block_values(b, encode_block(b)) for b in blocks))


async def ship_rows(database: Database, *rows: tuple[object, ...]) -> None:
    """Insert raw ``prediction_log_block`` rows (:data:`BLOCK_COLUMNS` order)."""
    async with database.write() as conn:
        await conn.execute(
            prediction_log_block.insert(), [dict(zip(BLOCK_COLUMNS, r, strict=True)) for r in rows]
        )


async def blocks_left(database: Database) -> int:
    """Rows in ``prediction_log_block``."""
    async with database.read() as conn:
        statement = sa.select(sa.func.count()).select_from(prediction_log_block)
        return int((await conn.execute(statement)).scalar_one())
