"""Stage transitions: None -> Staging -> Production -> Archived, and Archived -> Staging.

Rules, all checked inside one write transaction that holds the model's lock:

* a transition never changes a version number;
* only the moves in :data:`ALLOWED` are valid (also Staging/None -> Archived to retire a
  candidate);
* Production needs the ``promote`` permission (approver or admin) and an approved current
  model card;
* at most one Production version: promoting one archives the previous Production version in
  the same transaction (and a partial unique index backs this up);
* the model repository is brought in line before the commit (see
  :mod:`control_plane.registry.publisher`), the MLflow mirror after it.

>>> is_allowed(ModelStage.NONE, ModelStage.PRODUCTION)
False
>>> is_allowed(ModelStage.ARCHIVED, ModelStage.STAGING)
True
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from control_plane.registry.context import SERVED_STAGES
from control_plane.security.guards import check
from control_plane.security.models import Permission
from modelyard.enums import CardStatus, ModelStage
from modelyard.errors import FailedPrecondition
from modelyard.storage.audit import AuditEvent

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.registry.context import RegistryContext
    from control_plane.security.models import Principal
    from modelyard.model_repository import Route
    from modelyard.models import RegisteredModel

ALLOWED: dict[ModelStage, frozenset[ModelStage]] = {
    ModelStage.NONE: frozenset({ModelStage.STAGING, ModelStage.ARCHIVED}),
    ModelStage.STAGING: frozenset({ModelStage.PRODUCTION, ModelStage.ARCHIVED}),
    ModelStage.PRODUCTION: frozenset({ModelStage.ARCHIVED}),
    ModelStage.ARCHIVED: frozenset({ModelStage.STAGING}),
}


def is_allowed(source: ModelStage, target: ModelStage) -> bool:
    """Whether a version may move from ``source`` to ``target``."""
    return target in ALLOWED[source]


class StageService:
    """Move versions between stages and keep the model repository in line.

    Args:
        context: the shared registry dependencies.
    """

    def __init__(self, context: RegistryContext) -> None:
        self._ctx = context

    async def transition(
        self,
        name: str,
        version: int,
        stage: ModelStage,
        principal: Principal,
        reason: str = "",
    ) -> RegisteredModel:
        """Move ``name`` version ``version`` to ``stage``.

        Raises:
            NotFound: no such version.
            PermissionDenied: Production without the ``promote`` permission.
            FailedPrecondition: the move is not allowed from the current stage, or Production
                without an approved current card.
        """
        check(principal, Permission.PROMOTE if stage is ModelStage.PRODUCTION else Permission.WRITE)
        async with self._ctx.database.write() as conn:
            await self._ctx.store.lock_model(conn, name)
            model = await self._ctx.store.get(conn, name, version)
            _check_move(model, stage)
            if stage is ModelStage.PRODUCTION:
                await self._archive_production(conn, name, principal, version)
            await self._move(conn, model, stage, principal, reason)
            await self._ctx.publish(conn, name)
            moved = await self._ctx.store.get(conn, name, version)
        await self._ctx.mirror_model(name)
        return moved

    async def republish(self, name: str) -> None:
        """Bring the repository folder of ``name`` in line with the registry (repair)."""
        async with self._ctx.database.write() as conn:
            await self._ctx.store.lock_model(conn, name)
            await self._ctx.publish(conn, name)

    async def set_routes(
        self, name: str, routes: tuple[Route, ...], principal: Principal, reason: str = ""
    ) -> None:
        """Write the A/B ``routes`` of ``name`` into its ``config.json`` (audited).

        Runs under the model's lock, so a route never interleaves with a stage change, and
        every routed version must be Staging or Production at that moment.

        Raises:
            PermissionDenied: without the ``write`` permission.
            FailedPrecondition: a routed version is not Staging or Production.
        """
        check(principal, Permission.WRITE)
        async with self._ctx.database.write() as conn:
            await self._ctx.store.lock_model(conn, name)
            served = await self._ctx.store.versions_in(conn, name, SERVED_STAGES)
            unserved = sorted({r.version for r in routes} - set(served))
            if unserved:
                raise FailedPrecondition(
                    f"model {name!r} version(s) {unserved} are not in Staging or Production"
                )
            await self._ctx.audit_log.record(
                conn,
                AuditEvent(
                    actor=principal.name,
                    action="set_routes",
                    entity_kind="model",
                    entity=name,
                    to_state=", ".join(
                        f"{r.version}:{r.variant.value}:{r.weight:g}" for r in routes
                    ),
                    reason=reason,
                ),
            )
            # NOTE: the file last: a write the database refuses must not leave it changed
            await asyncio.to_thread(self._ctx.publisher.write_routes, name, routes)

    async def _archive_production(
        self, conn: AsyncConnection, name: str, principal: Principal, promoted: int
    ) -> None:
        current = await self._ctx.store.versions_in(conn, name, (ModelStage.PRODUCTION,))
        for version in sorted(current):
            previous = await self._ctx.store.get(conn, name, version)
            await self._move(
                conn, previous, ModelStage.ARCHIVED, principal, f"replaced by version {promoted}"
            )

    async def _move(
        self,
        conn: AsyncConnection,
        model: RegisteredModel,
        stage: ModelStage,
        principal: Principal,
        reason: str,
    ) -> None:
        await self._ctx.store.set_stage(conn, model.name, model.version, stage)
        await self._ctx.audit_log.record(
            conn,
            AuditEvent(
                actor=principal.name,
                action="transition",
                entity_kind="model_version",
                entity=f"{model.name}/{model.version}",
                from_state=model.stage.value,
                to_state=stage.value,
                reason=reason,
            ),
        )


def _check_move(model: RegisteredModel, stage: ModelStage) -> None:
    where = f"model {model.name!r} version {model.version}"
    if not is_allowed(model.stage, stage):
        raise FailedPrecondition(f"{where} cannot move from {model.stage.value} to {stage.value}")
    if stage is ModelStage.PRODUCTION and model.card_status is not CardStatus.APPROVED:
        raise FailedPrecondition(
            f"{where} cannot enter Production: its current model card (revision "
            f"{model.card_revision}) is {model.card_status.value}, not approved"
        )
