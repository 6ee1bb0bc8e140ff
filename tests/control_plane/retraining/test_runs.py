"""Runs end honestly: a failing step fails the run and registers nothing; a worker that dies
leaves a failed, resumable run (never "running" forever) that resumes to completion; triggers
de-duplicate; bad specs are refused."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import msgspec
import pytest

from control_plane.retraining.models import RetrainingRun, RunStatus
from modelyard.enums import ModelStage, TriggerType
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.control_plane.retraining.conftest import Services
from tests.control_plane.retraining.helpers import (
    DEVELOPER,
    churn_table,
    production_version,
    spec_for,
    strong_model,
)

pytestmark = pytest.mark.slow


def _model(services: Services, name: str, **spec: object) -> Path:
    frame = churn_table(11)
    data = services.root / f"{name}.parquet"
    frame.to_parquet(data)
    services.run(production_version(services.services, name, strong_model(frame), frame))
    spec_ = spec_for(data, **spec)
    services.run(services.services.retraining_service.put_spec(name, spec_, DEVELOPER))
    return data


def test_a_failing_training_step_fails_the_run_and_registers_nothing(services: Services) -> None:
    trainer = "tests.control_plane.retraining.helpers:train_and_raise"
    _model(services, "fails", trainer=trainer)
    cp = services.services
    versions_before = services.run(cp.registry.list_versions(name="fails"))
    run = services.run(cp.retraining_service.trigger("fails", TriggerType.MANUAL, "inject"))
    done = services.run(cp.retraining_service.wait(run.id))
    assert done.status is RunStatus.FAILED
    assert done.error is not None
    assert "injected training failure" in done.error
    assert [(s.name, s.status) for s in done.steps] == [
        ("load_data", "succeeded"),
        ("train", "failed"),
    ]
    assert done.steps[-1].error is not None
    assert "injected training failure" in done.steps[-1].error
    assert services.run(cp.registry.list_versions(name="fails")) == versions_before
    assert not done.resumable, "a step error is not an interruption"
    with pytest.raises(FailedPrecondition):
        services.run(cp.retraining_service.resume(done.id))
    again = services.run(cp.retraining_service.trigger("fails", TriggerType.MANUAL, "retry"))
    assert again.id != done.id, "a failed run no longer blocks new ones"
    services.run(cp.retraining_service.wait(again.id))


async def _running(cp_retraining: object, run_id: str) -> RetrainingRun:
    """The run once its worker is in the train step (a wait on the run's own records)."""
    for _ in range(600):
        run: RetrainingRun = await cp_retraining.get(run_id)  # type: ignore[attr-defined]
        if any(step.name == "train" for step in run.steps):
            return run
        await asyncio.sleep(0.1)  # the worker is another process: its records are the signal
    raise AssertionError(f"run {run_id} never reached the train step")


def test_a_killed_worker_leaves_a_resumable_run_that_resumes(services: Services) -> None:
    _model(services, "killed", tune={"trials": 200, "timeout_s": 0})
    cp = services.services
    retraining = cp.retraining_service
    run = services.run(retraining.trigger("killed", TriggerType.MANUAL, "to be killed"))
    services.run(_running(retraining, run.id))
    process = retraining._processes[run.id]  # the test plays the OOM killer
    os.kill(process.pid, signal.SIGKILL)
    failed = services.run(retraining.wait(run.id))
    assert failed.status is RunStatus.FAILED
    assert failed.resumable
    assert failed.error is not None
    assert "worker exited -9" in failed.error
    quick = spec_for(Path(services.root / "killed.parquet"))
    services.run(retraining.put_spec("killed", quick, DEVELOPER))
    resumed = services.run(retraining.resume(run.id))
    assert (resumed.status, resumed.attempt) == (RunStatus.PENDING, 2)
    done = services.run(retraining.wait(run.id))
    assert done.status in (RunStatus.PROMOTED, RunStatus.REJECTED), done.error


def test_a_run_whose_worker_stopped_beating_is_reaped(services: Services) -> None:
    _model(services, "orphan")
    cp = services.services
    retraining = cp.retraining_service
    store = retraining._store  # to plant a run no worker executes
    run = services.run(retraining.trigger("orphan", TriggerType.MANUAL, "first"))
    services.run(retraining.wait(run.id))
    import datetime as dt

    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    planted = msgspec.structs.replace(
        run, id="f" * 32, status=RunStatus.RUNNING, created_at=long_ago, heartbeat_at=long_ago
    )
    services.run(store.create_run(planted))
    assert services.run(retraining.reap()) == 1
    reaped = services.run(retraining.get(planted.id))
    assert (reaped.status, reaped.resumable) == (RunStatus.FAILED, True)
    assert reaped.error is not None
    assert "no heartbeat" in reaped.error


def test_triggers_while_a_run_is_active_attach_to_it(services: Services) -> None:
    _model(services, "busy")
    retraining = services.services.retraining_service

    async def burst() -> list[RetrainingRun]:
        return list(
            await asyncio.gather(
                *(retraining.trigger("busy", TriggerType.DRIFT, f"alert {i}") for i in range(5))
            )
        )

    runs = services.run(burst())
    assert len({r.id for r in runs}) == 1, "five concurrent triggers, one run"
    done = services.run(retraining.wait(runs[0].id))
    assert len(done.attached) == 4
    assert done.status in (RunStatus.PROMOTED, RunStatus.REJECTED), done.error


def test_specs_are_validated(services: Services) -> None:
    data = _model(services, "checked")
    retraining = services.services.retraining_service
    bad = [
        spec_for(data, primary_metric="precision"),
        spec_for(data, primary_metric="log_loss"),  # must be minimized
        spec_for(data, schedule="every tuesday"),
        spec_for(data, trainer="no_such_module:train"),
    ]
    for spec in bad:
        with pytest.raises(InvalidArgument):
            services.run(retraining.put_spec("checked", spec, DEVELOPER))
    with pytest.raises(NotFound):
        services.run(retraining.put_spec("never-registered", spec_for(data), DEVELOPER))
    with pytest.raises(NotFound):
        services.run(retraining.trigger("never-registered", TriggerType.MANUAL))
    assert services.run(services.services.registry.production("checked")).stage is (
        ModelStage.PRODUCTION
    )
