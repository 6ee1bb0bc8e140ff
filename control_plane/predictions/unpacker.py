"""The control plane's background unpacker: shipped prediction-log blocks become records.

Reads unpack before they read (:meth:`PredictionService.unpack`), so this task is not needed
for correctness; it keeps ``prediction_log_block`` short, so reads find nothing to do and
records appear when nobody reads. Every ``control_plane.unpack_interval_s`` it unpacks
without waiting for blocks other replicas hold (``wait=False``: replicas on one PostgreSQL
database share the work through ``SKIP LOCKED``), then refreshes its Prometheus metrics
(``GET /metrics``): the blocks and records still waiting and the blocks unpacked. An error is
logged and the next pass tries again; :meth:`BlockUnpacker.stop` lets the pass in progress
finish, so no connection stays checked out when the database is disposed of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from control_plane.background import run_every

if TYPE_CHECKING:
    from control_plane.predictions.service import PredictionService

log = logging.getLogger(__name__)


class UnpackMetrics:
    """``modelyard_prediction_blocks_pending``, ``modelyard_prediction_records_pending``,
    ``modelyard_prediction_blocks_unpacked_total`` and ``modelyard_prediction_blocks_dropped_total``
    (by this process, reads included)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.blocks_pending = Gauge(
            "modelyard_prediction_blocks_pending",
            "Prediction-log blocks shipped but not unpacked yet (at the last unpack pass).",
            registry=registry,
        )
        self.records_pending = Gauge(
            "modelyard_prediction_records_pending",
            "Records in the prediction-log blocks not unpacked yet (at the last unpack pass).",
            registry=registry,
        )
        self.blocks_unpacked = Counter(
            "modelyard_prediction_blocks_unpacked",
            "Prediction-log blocks this process unpacked into records (task and reads).",
            registry=registry,
        )
        self.blocks_dropped = Counter(
            "modelyard_prediction_blocks_dropped",
            "Prediction-log blocks this process deleted without records: damaged, or refused by "
            "the checks or the database (each logged with its key).",
            registry=registry,
        )
        self._counted = 0
        self._dropped = 0

    def update(self, unpacked_total: int, dropped_total: int, pending: tuple[int, int]) -> None:
        """Take the service's running totals of unpacked and dropped blocks and the pending
        counts."""
        self.blocks_unpacked.inc(unpacked_total - self._counted)
        self._counted = unpacked_total
        self.blocks_dropped.inc(dropped_total - self._dropped)
        self._dropped = dropped_total
        self.blocks_pending.set(pending[0])
        self.records_pending.set(pending[1])


class BlockUnpacker:
    """Unpacks shipped blocks every ``interval_s`` until stopped.

    Args:
        predictions: the prediction log's service (it does the unpacking).
        interval_s: seconds between passes.
        registry: where the metrics are registered (the one ``GET /metrics`` serves).
    """

    def __init__(
        self, predictions: PredictionService, interval_s: float, registry: CollectorRegistry
    ) -> None:
        self._predictions = predictions
        self._interval_s = interval_s
        self.metrics = UnpackMetrics(registry)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        """Start the loop (idempotent)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="block-unpacker")

    async def stop(self) -> None:
        """Stop the loop once its pass in progress has finished (a pass is a few short
        transactions; if ``stop()`` is cancelled the loop still ends after its pass)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        # NOTE: shielded, so a cancelled stop() leaves the loop to end after its pass too.
        await asyncio.shield(task)

    async def run_once(self) -> int:
        """One pass: unpack what no other replica holds, refresh the metrics.

        Returns:
            How many blocks were unpacked.
        """
        predictions = self._predictions
        try:
            return await predictions.unpack(wait=False)
        finally:  # NOTE: a failing pass must not leave the metrics where the last good one did
            with contextlib.suppress(Exception):
                pending = await predictions.pending()
                self.metrics.update(
                    predictions.unpacked_blocks, predictions.dropped_blocks, pending
                )

    async def _loop(self) -> None:
        await run_every(
            self.run_once,
            interval_s=self._interval_s,
            wake=self._wake,
            stopping=lambda: self._stopping,
            failure="prediction log: unpacking blocks failed",
            logger=log,
        )


__all__ = ["BlockUnpacker", "UnpackMetrics"]
