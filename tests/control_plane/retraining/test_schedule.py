"""A retraining schedule survives control-plane restarts: a due run fires once, a run that
fell due while the control plane was down fires once after it restarts, and a scheduler re-run
of the same due time does not start a second retraining."""

from __future__ import annotations

import datetime as dt

import pytest

from control_plane.retraining.models import RunStatus
from control_plane.retraining.service import RetrainingService, schedule_job
from control_plane.retraining.store import SqlRetrainingStore
from control_plane.scheduler import Scheduler
from control_plane.scheduler.models import JobRun
from control_plane.scheduler.scheduler import ManualClock
from modelyard.enums import TriggerType
from tests.control_plane.retraining.conftest import Services
from tests.control_plane.retraining.helpers import (
    DEVELOPER,
    churn_table,
    production_version,
    spec_for,
    weak_model,
)

pytestmark = pytest.mark.slow

START = dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)


def _replica(services: Services, clock: ManualClock) -> tuple[Scheduler, RetrainingService]:
    """A fresh control-plane process: its own scheduler and retraining service, same database."""
    cp = services.services
    scheduler = Scheduler(cp.database, owner=f"replica-{id(clock)}-{clock.now}", clock=clock)
    service = RetrainingService(
        SqlRetrainingStore(cp.database),
        cp.registry,
        scheduler,
        cp.settings,
        schema=cp.database.schema,
    )
    return scheduler, service


def test_schedules_fire_once_across_restarts(services: Services) -> None:
    frame = churn_table(5)
    data = services.root / "weekly.parquet"
    frame.to_parquet(data)
    cp = services.services
    services.run(production_version(cp, "weekly", weak_model(frame), frame))
    clock = ManualClock(START)
    scheduler, service = _replica(services, clock)
    services.run(service.start())
    services.run(service.put_spec("weekly", spec_for(data, schedule="every 1h"), DEVELOPER))
    assert schedule_job("weekly") in scheduler.names
    services.run(scheduler.tick())  # stores the job: first due one hour from now
    clock.advance(hours=1)
    services.run(scheduler.tick())
    services.run(scheduler.drain())
    runs = services.run(service.list("weekly"))
    assert [r.trigger.trigger_type for r in runs] == [TriggerType.SCHEDULE]
    services.run(service.wait(runs[0].id))

    # Restart at the same instant: nothing is due, nothing fires twice.
    scheduler, service = _replica(services, clock)
    services.run(service.start())
    services.run(scheduler.tick())
    services.run(scheduler.drain())
    assert len(services.run(service.list("weekly"))) == 1

    # Down for three hours: the missed due times coalesce into one run after the restart.
    clock.advance(hours=3)
    scheduler, service = _replica(services, clock)
    services.run(service.start())
    services.run(scheduler.tick())
    services.run(scheduler.drain())
    runs = services.run(service.list("weekly"))
    assert len(runs) == 2
    done = services.run(service.wait(runs[0].id))
    assert done.status in (RunStatus.PROMOTED, RunStatus.REJECTED), done.error

    # The scheduler re-runs an interrupted due time: no second retraining for it.
    due = runs[0].trigger.due_at
    assert due is not None
    rerun = JobRun(
        name=schedule_job("weekly"), due_at=due, started_at=clock.now, owner="x", rerun=True
    )
    services.run(service._scheduled("weekly", rerun))  # the job function itself
    assert len(services.run(service.list("weekly"))) == 2
