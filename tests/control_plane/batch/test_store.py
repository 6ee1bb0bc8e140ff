"""The batch jobs store contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from control_plane.batch.models import BatchJob, BatchOptions, JobState, OutputFormat, Progress
from control_plane.batch.store import SqlBatchJobStore
from modelyard.storage import Database

T0 = dt.datetime(2026, 12, 4, 5, 0, tzinfo=dt.UTC)


def _job(job_id: str, minutes: int) -> BatchJob:
    at = T0 + dt.timedelta(minutes=minutes)
    return BatchJob(
        id=job_id,
        model="churn",
        version=3,
        input="in/",
        output=f"out/{job_id}",
        options=BatchOptions(chunk_size=10, id_columns=("id",), output_format=OutputFormat.CSV),
        fingerprint="f" * 64,
        progress=Progress(state=JobState.PENDING),
        created_at=at,
        updated_at=at,
        created_by="dev",
    )


async def test_jobs_round_trip_and_list_newest_first(database: Database) -> None:
    store = SqlBatchJobStore()
    async with database.write() as conn:
        for index, job_id in enumerate(["a", "b", "c"]):
            await store.add(conn, _job(job_id, index))
    async with database.read() as conn:
        assert await store.get(conn, "b") == _job("b", 1)
        assert await store.get(conn, "zzz") is None
        assert [j.id for j in await store.newest(conn, 2)] == ["c", "b"]


async def test_progress_replaces_state_and_counters(database: Database) -> None:
    store = SqlBatchJobStore()
    progress = Progress(
        state=JobState.FAILED, rows_total=100, rows_done=40, rows_failed=2, shards_done=4,
        error="a worker process died",
    )  # fmt: skip
    async with database.write() as conn:
        await store.add(conn, _job("a", 0))
        await store.add(conn, _job("b", 1))
        await store.set_progress(conn, "a", progress, T0 + dt.timedelta(hours=1))
    async with database.read() as conn:
        stored = await store.get(conn, "a")
        active = await store.active(conn)
    assert stored is not None
    assert stored.progress == progress
    assert stored.updated_at == T0 + dt.timedelta(hours=1)
    assert [j.id for j in active] == ["b"]
