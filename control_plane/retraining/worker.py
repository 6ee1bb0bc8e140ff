"""``python -m control_plane.retraining.worker``: execute one retraining run, then exit.

The control plane starts one such process per run (:class:`RetrainingService`), so training,
tuning and conversion never share the API's event loop or its GIL. The parent writes one JSON
object on stdin — the effective settings, the database schema (tests) and the run id — so the
worker uses exactly the parent's configuration without reading the environment. The worker
records every step in the database; its exit status is only a backstop (the parent marks a run
failed when the worker died without recording an end).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import msgspec

from control_plane.retraining.models import RetrainingRun, RunStatus
from control_plane.retraining.pipeline import RetrainingPipeline
from control_plane.retraining.recorder import StepRecorder
from control_plane.retraining.store import SqlRetrainingStore
from control_plane.security.models import Principal
from modelyard.enums import Role
from modelyard.errors import ModelyardError
from modelyard.settings import Settings
from modelyard.storage import storable_text

log = logging.getLogger(__name__)

PRINCIPAL = Principal(name="retraining", role=Role.DEVELOPER, token_id="in-process")
"""Who registers and stages candidates (recorded in the audit log)."""


class WorkerOrder(msgspec.Struct, kw_only=True, frozen=True):
    """What the parent hands to a worker on stdin."""

    settings: Settings
    schema: str | None = None
    run_id: str
    heartbeat_s: float = 5.0


def _finished(run: RetrainingRun, **changes: Any) -> RetrainingRun:
    return msgspec.structs.replace(run, **changes)


async def execute(order: WorkerOrder) -> RetrainingRun:
    """Execute the run named by ``order`` and record how it ended."""
    from control_plane.app import ControlPlaneServices
    from modelyard.storage import Database

    settings = order.settings
    database = Database(settings.database.url, schema=order.schema, pool_size=2)
    services = ControlPlaneServices(settings, database)
    store = SqlRetrainingStore(database)
    recorder = StepRecorder(store, order.run_id, order.heartbeat_s)
    try:
        run = await store.change_run(
            order.run_id, lambda r: _finished(r, status=RunStatus.RUNNING, error=None)
        )
        await recorder.start_heartbeat()
        pipeline: RetrainingPipeline | None = None
        try:
            spec = await store.get_spec(run.model)
            parent = await services.registry.latest(run.model)
            pipeline = RetrainingPipeline(services, run, spec, PRINCIPAL, recorder)
            promoted, reason = await pipeline.execute(parent)
        except ModelyardError as error:
            return await _fail(store, order.run_id, pipeline, str(error))
        except Exception as error:
            log.exception("retraining run %s failed", order.run_id)
            return await _fail(store, order.run_id, pipeline, f"{type(error).__name__}: {error}")
        work = pipeline.workspace
        return await store.change_run(
            order.run_id,
            lambda r: _finished(
                r,
                status=RunStatus.PROMOTED if promoted else RunStatus.REJECTED,
                parent_version=parent.version,
                candidate_version=None if work.candidate is None else work.candidate.version,
                comparison=work.comparison,
                decision=reason,
            ),
        )
    finally:
        await recorder.stop_heartbeat()
        await database.dispose()


async def _fail(
    store: SqlRetrainingStore, run_id: str, pipeline: RetrainingPipeline | None, error: str
) -> RetrainingRun:
    work = None if pipeline is None else pipeline.workspace
    candidate = None if work is None or work.candidate is None else work.candidate.version
    comparison = None if work is None else work.comparison
    return await store.change_run(
        run_id,
        lambda r: _finished(
            r,
            status=RunStatus.FAILED,
            error=storable_text(error),
            candidate_version=candidate,
            comparison=comparison,
        ),
    )


def main() -> int:
    """Read the order from stdin, execute it; 0 when the run's end was recorded."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    order = msgspec.json.decode(sys.stdin.buffer.read(), type=WorkerOrder)
    run = asyncio.run(execute(order))
    print(msgspec.json.encode({"run": run.id, "status": run.status.value}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
