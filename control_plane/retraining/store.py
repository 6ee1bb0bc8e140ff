"""Storage of retraining specs and runs (SQLite and PostgreSQL through SQLAlchemy Core)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from control_plane.retraining.models import (
    ACTIVE,
    RetrainingRun,
    RetrainingSpec,
    RunStatus,
    TriggerRecord,
)
from control_plane.retraining.tables import retraining_runs, retraining_specs
from modelyard.errors import AlreadyExists, NotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelyard.storage import Database

_RUN = msgspec.json.Decoder(RetrainingRun)
_SPEC = msgspec.json.Decoder(RetrainingSpec)
_encode = msgspec.json.Encoder().encode


class RetrainingStore(Protocol):
    """Specs and runs of retraining.

    The contract every implementation keeps:

    * :meth:`create_run` inserts a pending run unless the model already has an active
      (pending or running) run, in which case it raises :class:`AlreadyExists` — at most one
      active run per model, also across control-plane replicas sharing the database.
    * :meth:`change_run` reads, changes and writes one run in one write transaction, so
      concurrent changes (a heartbeat and a step record) never lose each other's updates; a
      run that leaves the active statuses stops blocking new runs of its model.
    * Timestamps are UTC; runs list newest first.
    """

    async def put_spec(self, model: str, spec: RetrainingSpec, actor: str) -> None:
        """Create or replace the spec of ``model``."""
        ...

    async def get_spec(self, model: str) -> RetrainingSpec:
        """The spec of ``model``. Raises NotFound when there is none."""
        ...

    async def list_specs(self) -> dict[str, RetrainingSpec]:
        """Every spec, by model."""
        ...

    async def create_run(self, run: RetrainingRun) -> RetrainingRun:
        """Insert ``run`` (pending). Raises AlreadyExists while the model has an active run."""
        ...

    async def active_run(self, model: str) -> RetrainingRun | None:
        """The pending or running run of ``model``, if any."""
        ...

    async def get_run(self, run_id: str) -> RetrainingRun:
        """One run. Raises NotFound."""
        ...

    async def list_runs(self, model: str | None, limit: int, offset: int) -> list[RetrainingRun]:
        """Runs (of ``model``, or all), newest first."""
        ...

    async def change_run(
        self, run_id: str, change: Callable[[RetrainingRun], RetrainingRun]
    ) -> RetrainingRun:
        """Apply ``change`` to the stored run atomically; the changed run.

        Raises NotFound for an unknown run, AlreadyExists when the change would make a second
        active run of the model, and whatever ``change`` raises (nothing is written then).
        """
        ...

    async def stale_runs(self, older_than: dt.datetime) -> list[RetrainingRun]:
        """Active runs whose last heartbeat (or creation) is older than ``older_than``."""
        ...


def _columns(run: RetrainingRun) -> dict[str, Any]:
    return {
        "model": run.model,
        "status": run.status.value,
        "active_model": run.model if run.status in ACTIVE else None,
        "body": _encode(run).decode(),
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "heartbeat_at": run.heartbeat_at,
    }


class SqlRetrainingStore:
    """:class:`RetrainingStore` on the platform database (``retraining`` migration branch)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def put_spec(self, model: str, spec: RetrainingSpec, actor: str) -> None:
        values = {
            "spec": _encode(spec).decode(),
            "updated_at": dt.datetime.now(dt.UTC),
            "updated_by": actor,
        }
        async with self._database.write() as conn:
            found = await conn.execute(
                sa.select(retraining_specs.c.model)
                .where(retraining_specs.c.model == model)
                .with_for_update()
            )
            if found.first() is None:
                await conn.execute(retraining_specs.insert().values(model=model, **values))
            else:
                await conn.execute(
                    retraining_specs.update()
                    .where(retraining_specs.c.model == model)
                    .values(**values)
                )

    async def get_spec(self, model: str) -> RetrainingSpec:
        async with self._database.read() as conn:
            row = (
                await conn.execute(
                    sa.select(retraining_specs.c.spec).where(retraining_specs.c.model == model)
                )
            ).first()
        if row is None:
            raise NotFound("retraining spec of model", model)
        return _SPEC.decode(row[0])

    async def list_specs(self) -> dict[str, RetrainingSpec]:
        query = sa.select(retraining_specs.c.model, retraining_specs.c.spec)
        async with self._database.read() as conn:
            rows = (await conn.execute(query.order_by(retraining_specs.c.model))).all()
        return {row[0]: _SPEC.decode(row[1]) for row in rows}

    async def create_run(self, run: RetrainingRun) -> RetrainingRun:
        try:
            async with self._database.write() as conn:
                await conn.execute(retraining_runs.insert().values(id=run.id, **_columns(run)))
        except IntegrityError:
            raise AlreadyExists(
                f"model {run.model!r} already has an active retraining run"
            ) from None
        return run

    async def active_run(self, model: str) -> RetrainingRun | None:
        query = sa.select(retraining_runs.c.body).where(retraining_runs.c.active_model == model)
        async with self._database.read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _RUN.decode(row[0])

    async def get_run(self, run_id: str) -> RetrainingRun:
        query = sa.select(retraining_runs.c.body).where(retraining_runs.c.id == run_id)
        async with self._database.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound("retraining run", run_id)
        return _RUN.decode(row[0])

    async def list_runs(self, model: str | None, limit: int, offset: int) -> list[RetrainingRun]:
        query = sa.select(retraining_runs.c.body)
        if model is not None:
            query = query.where(retraining_runs.c.model == model)
        query = query.order_by(retraining_runs.c.created_at.desc(), retraining_runs.c.id)
        async with self._database.read() as conn:
            rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [_RUN.decode(row[0]) for row in rows]

    async def change_run(
        self, run_id: str, change: Callable[[RetrainingRun], RetrainingRun]
    ) -> RetrainingRun:
        try:
            return await self._change(run_id, change)
        except IntegrityError:
            raise AlreadyExists(
                f"the model of retraining run {run_id} already has an active run"
            ) from None

    async def _change(
        self, run_id: str, change: Callable[[RetrainingRun], RetrainingRun]
    ) -> RetrainingRun:
        async with self._database.write() as conn:
            row = (
                await conn.execute(
                    sa.select(retraining_runs.c.body)
                    .where(retraining_runs.c.id == run_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise NotFound("retraining run", run_id)
            changed = change(_RUN.decode(row[0]))
            changed = msgspec.structs.replace(changed, updated_at=dt.datetime.now(dt.UTC))
            await conn.execute(
                retraining_runs.update()
                .where(retraining_runs.c.id == run_id)
                .values(**_columns(changed))
            )
        return changed

    async def stale_runs(self, older_than: dt.datetime) -> list[RetrainingRun]:
        last_sign = sa.func.coalesce(retraining_runs.c.heartbeat_at, retraining_runs.c.created_at)
        query = sa.select(retraining_runs.c.body).where(
            retraining_runs.c.active_model.is_not(None), last_sign < older_than
        )
        async with self._database.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_RUN.decode(row[0]) for row in rows]


def attach_trigger(run: RetrainingRun, trigger: TriggerRecord) -> RetrainingRun:
    """``run`` with one more attached trigger (a de-duplicated later trigger)."""
    return msgspec.structs.replace(run, attached=(*run.attached, trigger))


def is_active(run: RetrainingRun) -> bool:
    """Whether ``run`` still blocks new runs of its model."""
    return run.status in (RunStatus.PENDING, RunStatus.RUNNING)
