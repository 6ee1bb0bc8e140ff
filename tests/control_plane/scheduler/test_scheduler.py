"""The scheduler on SQLite and PostgreSQL: due runs fire once, restarts neither double-fire nor
miss a run, crashed runs are taken over after the lease, and racing replicas fire each due run
exactly once. A manual clock makes the schedule reproducible; one test runs the real loop."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from control_plane.scheduler import JobRun, ManualClock, Schedule, Scheduler
from control_plane.scheduler.tables import scheduler_jobs
from modelyard.errors import InvalidArgument, NotFound
from modelyard.storage import Database

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
HOUR = Schedule.parse("every 1h")


class Recorder:
    """A job that records every run it is handed."""

    def __init__(self) -> None:
        self.runs: list[JobRun] = []
        self.release = asyncio.Event()
        self.block = False

    async def __call__(self, run: JobRun) -> None:
        self.runs.append(run)
        if self.block:
            await self.release.wait()


@pytest.fixture
async def replica_database(database: Database) -> AsyncIterator[Database]:
    """A second handle (own engine and pool) on the same database, as another replica has."""
    other = Database(database.url, schema=database.schema)
    try:
        yield other
    finally:
        await other.dispose()


async def _state(scheduler: Scheduler, name: str) -> dict[str, object]:
    [state] = [s for s in await scheduler.jobs() if s.name == name]
    return {f: getattr(state, f) for f in state.__struct_fields__}


async def test_a_due_run_fires_once_and_missed_runs_coalesce(database: Database) -> None:
    clock = ManualClock(T0)
    scheduler = Scheduler(database, owner="a", clock=clock)
    job = Recorder()
    scheduler.register("hourly", HOUR, job)
    assert await scheduler.tick() == []  # stored; first due at 13:00
    clock.advance(minutes=59)
    assert await scheduler.tick() == []
    clock.advance(minutes=1)
    assert await scheduler.tick() == ["hourly"]
    await scheduler.drain()
    assert await scheduler.tick() == []  # same due time: never twice
    clock.advance(hours=5, minutes=30)  # 14:00 .. 18:00 missed
    assert await scheduler.tick() == ["hourly"]
    await scheduler.drain()
    assert [r.due_at for r in job.runs] == [T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=2)]
    state = await _state(scheduler, "hourly")
    assert state["next_run_at"] == T0 + dt.timedelta(hours=7)
    assert state["run_count"] == 2
    assert state["last_status"] == "succeeded"
    assert state["lease_owner"] is None


async def test_a_restart_neither_double_fires_nor_misses(database: Database) -> None:
    clock = ManualClock(T0)
    first, job = Scheduler(database, owner="a", clock=clock), Recorder()
    first.register("hourly", HOUR, job)
    await first.tick()
    clock.advance(hours=1)
    await first.tick()
    await first.drain()
    await first.stop()
    second = Scheduler(database, owner="b", clock=clock)
    second.register("hourly", HOUR, job)  # same schedule: the stored plan is kept
    assert await second.tick() == []  # the 13:00 run is done: not again after the restart
    clock.advance(hours=3)  # 14:00 was due while no replica ran: run once on start
    assert await second.tick() == ["hourly"]
    await second.drain()
    assert [r.owner for r in job.runs] == ["a", "b"]
    assert job.runs[1].due_at == T0 + dt.timedelta(hours=2)


async def test_a_run_interrupted_by_shutdown_runs_again_after_restart(database: Database) -> None:
    clock = ManualClock(T0 + dt.timedelta(hours=1))
    first, job = Scheduler(database, owner="a", clock=clock), Recorder()
    job.block = True
    first.register("hourly", HOUR, job)
    await first.tick()
    clock.advance(hours=1)
    assert await first.tick() == ["hourly"]
    await asyncio.sleep(0)  # let the run start
    await first.stop()
    assert (await _state(first, "hourly"))["last_status"] == "interrupted"
    second, job.block = Scheduler(database, owner="b", clock=clock), False
    second.register("hourly", HOUR, job)
    assert await second.tick() == ["hourly"]
    await second.drain()
    assert [(r.owner, r.rerun) for r in job.runs] == [("a", False), ("b", True)]
    assert job.runs[0].due_at == job.runs[1].due_at
    assert (await _state(second, "hourly"))["run_count"] == 1


async def test_a_crashed_replica_is_taken_over_after_its_lease(
    database: Database, replica_database: Database
) -> None:
    clock = ManualClock(T0)
    crashed = Scheduler(database, owner="a", clock=clock, lease_s=60, tick_s=1)
    survivor = Scheduler(replica_database, owner="b", clock=clock, lease_s=60, tick_s=1)
    job = Recorder()
    job.block = True
    for scheduler in (crashed, survivor):
        scheduler.register("hourly", HOUR, job)
    await crashed.tick()
    clock.advance(hours=1)
    assert await crashed.tick() == ["hourly"]
    clock.advance(seconds=59)  # "a" stopped renewing (crashed); its lease still holds
    assert await survivor.tick() == []
    clock.advance(seconds=2)
    assert await survivor.tick() == ["hourly"]
    job.release.set()
    await survivor.drain()
    await crashed.drain()
    assert [(r.owner, r.rerun) for r in job.runs] == [("a", False), ("b", True)]
    state = await _state(survivor, "hourly")
    assert state["run_count"] == 1  # the crashed owner's late finish was refused
    assert state["next_run_at"] == T0 + dt.timedelta(hours=2)


async def test_a_failing_job_is_recorded_and_keeps_its_schedule(database: Database) -> None:
    clock = ManualClock(T0)
    scheduler = Scheduler(database, owner="a", clock=clock)

    async def broken(run: JobRun) -> None:
        raise RuntimeError(f"no data for {run.due_at:%H:%M}")

    scheduler.register("broken", HOUR, broken)
    await scheduler.tick()
    clock.advance(hours=1)
    await scheduler.tick()
    await scheduler.drain()
    state = await _state(scheduler, "broken")
    assert state["last_status"] == "failed"
    assert state["last_error"] == "RuntimeError: no data for 13:00"
    assert state["next_run_at"] == T0 + dt.timedelta(hours=2)


async def test_a_job_that_cannot_start_does_not_keep_the_others_from_running(
    database: Database,
) -> None:
    """A stored schedule that no longer parses (written by an older release, which accepted
    ``0 0 30 2 *``) made every tick raise before: no job of the replica ran again."""
    clock = ManualClock(T0)
    scheduler, first, second = Scheduler(database, owner="a", clock=clock), Recorder(), Recorder()
    scheduler.register("a-old", HOUR, first)
    scheduler.register("b-fine", HOUR, second)
    await scheduler.tick()
    async with database.write() as conn:
        await conn.execute(
            scheduler_jobs.update()
            .where(scheduler_jobs.c.name == "a-old")
            .values(schedule="0 0 30 2 *")
        )
    clock.advance(hours=1)
    assert await scheduler.tick() == ["b-fine"]  # "a-old" comes first, and fails
    await scheduler.drain()
    assert (len(first.runs), len(second.runs)) == (0, 1)


async def test_how_a_run_ended_is_recorded_through_a_failed_write(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, a failed final write escaped the run's task: the row stayed ``running`` with its
    lease, and once the lease passed the same due run ran again."""
    clock = ManualClock(T0)
    scheduler, job = Scheduler(database, owner="a", clock=clock), Recorder()
    scheduler.register("hourly", HOUR, job)
    await scheduler.tick()
    store = scheduler._store
    real = store.finish
    failures = [OSError("injected: the database is unreachable")]

    async def flaky(*args: Any, **kwargs: Any) -> bool:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    store.finish = flaky  # type: ignore[method-assign]
    clock.advance(hours=1)
    assert await scheduler.tick() == ["hourly"]
    await scheduler.drain()
    state = await _state(scheduler, "hourly")
    assert (state["last_status"], state["lease_owner"], state["running_due_at"]) == (
        "succeeded", None, None,
    )  # fmt: skip
    assert "how job hourly ended (succeeded): not written yet" in caplog.text


async def test_run_now_and_a_changed_schedule(database: Database) -> None:
    clock = ManualClock(T0)
    scheduler, job = Scheduler(database, owner="a", clock=clock), Recorder()
    scheduler.register("weekly", Schedule.parse("@weekly"), job)
    await scheduler.tick()
    assert (await _state(scheduler, "weekly"))["next_run_at"] == dt.datetime(
        2026, 12, 6, tzinfo=dt.UTC
    )
    await scheduler.run_now("weekly")
    assert await scheduler.tick() == ["weekly"]
    await scheduler.drain()
    with pytest.raises(NotFound):
        await scheduler.run_now("nope")
    replanned = Scheduler(database, owner="b", clock=clock)
    replanned.register("weekly", Schedule.parse("every 5m"), job)
    await replanned.tick()
    state = await _state(replanned, "weekly")
    assert state["schedule"] == "every 5m"
    assert state["next_run_at"] == T0 + dt.timedelta(minutes=5)


def test_invalid_configuration_is_refused(tmp_path: object) -> None:
    database = Database("sqlite:///" + str(tmp_path) + "/x.db")
    with pytest.raises(InvalidArgument, match="lease_s"):
        Scheduler(database, tick_s=10, lease_s=15)
    with pytest.raises(InvalidArgument, match="job name"):
        Scheduler(database).register("", HOUR, Recorder())


async def test_racing_replicas_fire_each_due_run_exactly_once(
    database: Database, replica_database: Database
) -> None:
    clock = ManualClock(T0)
    job = Recorder()
    replicas = [
        Scheduler(db, owner=f"r{i}", clock=clock)
        for i, db in enumerate([database, replica_database, database, replica_database])
    ]
    for replica in replicas:
        replica.register("hourly", HOUR, job)
    await asyncio.gather(*(r.tick() for r in replicas))
    for _ in range(12):
        clock.advance(hours=1)
        started = await asyncio.gather(*(r.tick() for r in replicas))
        assert sum(len(names) for names in started) == 1
        await asyncio.gather(*(r.drain() for r in replicas))
    dues = [r.due_at for r in job.runs]
    assert dues == [T0 + dt.timedelta(hours=h) for h in range(1, 13)]


async def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_two_running_replicas_in_real_time(
    database: Database, replica_database: Database
) -> None:
    job = Recorder()
    replicas = [
        Scheduler(db, owner=f"r{i}", tick_s=0.05, lease_s=5)
        for i, db in enumerate([database, replica_database])
    ]
    starts: list[Awaitable[None]] = []
    for replica in replicas:
        replica.register("fast", Schedule.every(0.2), job)
        starts.append(replica.start())
    await asyncio.gather(*starts)
    try:
        await _wait_for(lambda: len(job.runs) >= 6)
    finally:
        await asyncio.gather(*(r.stop() for r in replicas))
    dues = [r.due_at for r in job.runs]
    assert len(dues) == len(set(dues)), "a due run fired twice"


async def test_stop_returns_only_once_a_cancelled_run_has_released_its_connection(
    database: Database, replica_database: Database
) -> None:
    # A run cancelled by stop() while it records how it ended used to finish that write in the
    # background: stop() returned, the caller disposed of the database, and the connection the
    # write held was never closed (a ResourceWarning in whichever later test ran the GC).
    clock = ManualClock(T0)
    scheduler, job = Scheduler(database, owner="a", clock=clock), Recorder()
    job.block = True
    scheduler.register("hourly", HOUR, job)
    await scheduler.tick()
    clock.advance(hours=1)
    assert await scheduler.tick() == ["hourly"]
    row = scheduler_jobs.c.name == "hourly"
    async with replica_database.write() as blocker:  # another replica holds the job's row
        await blocker.execute(scheduler_jobs.update().where(row).values(name=scheduler_jobs.c.name))
        job.release.set()  # the run ends and waits on the row to record it
        await _wait_for(lambda: database.connections_in_use() == 1)
        stopping = asyncio.create_task(scheduler.stop())
        await asyncio.sleep(0)  # stop() cancels the run inside its finishing write
    await stopping
    assert database.connections_in_use() == 0
    state = await _state(scheduler, "hourly")
    assert state["last_status"] == "succeeded"
    assert state["run_count"] == 1


async def test_a_cancelled_stop_leaves_the_loop_to_the_next_stop(
    database: Database, replica_database: Database
) -> None:
    # stop() cancelled while it waited for the loop's pass used to let the loop tick on, unowned:
    # the next stop() (the app's close after its lifespan) returned at once.
    clock = ManualClock(T0)
    scheduler, job = Scheduler(database, owner="a", clock=clock, tick_s=0.05, lease_s=5), Recorder()
    scheduler.register("hourly", HOUR, job)
    await scheduler.tick()
    row = scheduler_jobs.c.name == "hourly"
    async with replica_database.write() as blocker:  # another replica holds the job's row
        await blocker.execute(scheduler_jobs.update().where(row).values(name=scheduler_jobs.c.name))
        scheduler.register("hourly", HOUR, job)  # the loop's first pass stores it: it waits
        await scheduler.start()
        await _wait_for(lambda: database.connections_in_use() == 1)
        cancelled = asyncio.create_task(scheduler.stop())
        await asyncio.sleep(0)  # stop() waits for the pass
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        stopping = asyncio.create_task(scheduler.stop())
        await asyncio.sleep(0)
    await stopping
    assert database.connections_in_use() == 0
    assert job.runs == []
