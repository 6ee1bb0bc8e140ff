"""Records a run's steps and heartbeat in the store while the worker executes it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import msgspec

from control_plane.retraining.models import RetrainingRun, StepRecord
from modelyard.storage import storable_text

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from control_plane.retraining.store import RetrainingStore

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _set_step(run: RetrainingRun, record: StepRecord) -> RetrainingRun:
    steps = tuple(s for s in run.steps if s.name != record.name)
    return msgspec.structs.replace(run, steps=(*steps, record))


class StepRecorder:
    """Writes each step's start and end (log lines, error) and a periodic heartbeat.

    Args:
        store: the retraining store.
        run_id: the run being executed.
        heartbeat_s: seconds between heartbeats (a run whose heartbeat stops is reaped).
    """

    def __init__(self, store: RetrainingStore, run_id: str, heartbeat_s: float) -> None:
        self._store = store
        self._run_id = run_id
        self._heartbeat_s = heartbeat_s
        self._beating: asyncio.Task[None] | None = None

    async def start_heartbeat(self) -> None:
        """Beat now and every ``heartbeat_s`` until :meth:`stop_heartbeat`."""
        await self._beat()
        self._beating = asyncio.create_task(self._beat_forever())

    async def stop_heartbeat(self) -> None:
        """Stop beating (idempotent)."""
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
            self._beating = None

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)  # a period, not a wait for an event
            try:
                await self._beat()
            except Exception as exc:  # NOTE: a failed write (database locked, connection lost)
                # must not end the heartbeat: the run would be reaped as dead while it trains,
                # and a second run of the model could start beside it
                log.warning(
                    "retraining run %s: heartbeat not recorded (%s: %s); next in %gs",
                    self._run_id,
                    type(exc).__name__,
                    exc,
                    self._heartbeat_s,
                )

    async def _beat(self) -> None:
        now = _now()
        await self._store.change_run(
            self._run_id, lambda run: msgspec.structs.replace(run, heartbeat_at=now)
        )

    @asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[list[str]]:
        """Record ``name`` as running, yield its log, then record success or the error."""
        started = _now()
        running = StepRecord(name=name, status="running", started_at=started)
        await self._store.change_run(self._run_id, lambda run: _set_step(run, running))
        log: list[str] = []
        try:
            yield log
        except BaseException as error:
            failed = StepRecord(
                name=name,
                status="failed",
                started_at=started,
                finished_at=_now(),
                log=tuple(log),
                error=storable_text(f"{type(error).__name__}: {error}"),
            )
            await asyncio.shield(
                self._store.change_run(self._run_id, lambda run: _set_step(run, failed))
            )
            raise
        done = StepRecord(
            name=name, status="succeeded", started_at=started, finished_at=_now(), log=tuple(log)
        )
        await self._store.change_run(self._run_id, lambda run: _set_step(run, done))
