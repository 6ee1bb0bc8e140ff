"""The run recorder's heartbeat on SQLite and PostgreSQL: it outlives a failed write."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import Callable

import pytest

from control_plane.retraining.models import RetrainingRun, RunStatus, TriggerRecord
from control_plane.retraining.recorder import StepRecorder
from control_plane.retraining.store import SqlRetrainingStore
from modelyard.enums import TriggerType
from modelyard.storage import Database


async def test_the_heartbeat_outlives_a_failed_write(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, one failed write ended the heartbeat task while the run went on training: the
    reaper then marked the run failed after ``stale_after_s``, and a later trigger could start
    a second run of the model beside it."""
    store = SqlRetrainingStore(database)
    now = dt.datetime.now(dt.UTC)
    trigger = TriggerRecord(trigger_type=TriggerType.MANUAL, reason="test", at=now)
    run = RetrainingRun(
        id="b" * 32, model="beating", status=RunStatus.RUNNING, trigger=trigger,
        created_at=now, updated_at=now,
    )  # fmt: skip
    await store.create_run(run)
    recorder = StepRecorder(store, run.id, heartbeat_s=0.05)
    await recorder.start_heartbeat()
    first = (await store.get_run(run.id)).heartbeat_at
    assert first is not None
    real = store.change_run
    failures = [sqlite3.OperationalError("database is locked")]
    recovered = asyncio.Event()

    async def flaky(run_id: str, change: Callable[[RetrainingRun], RetrainingRun]) -> RetrainingRun:
        if failures:
            raise failures.pop()
        changed = await real(run_id, change)
        recovered.set()
        return changed

    store.change_run = flaky  # type: ignore[method-assign]
    await asyncio.wait_for(recovered.wait(), timeout=10)  # a beat after the failed one
    later = (await store.get_run(run.id)).heartbeat_at
    assert later is not None
    assert later > first
    assert "heartbeat not recorded (OperationalError: database is locked)" in caplog.text
    await recorder.stop_heartbeat()
