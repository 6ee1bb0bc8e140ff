"""What the registry's services share: the database, the store and the outside effects.

:meth:`RegistryContext.publish` and :meth:`RegistryContext.mirror_model` are the two effects
of a change beyond the database: the model repository (inside the write transaction, while the
model is locked, so publications of one model never interleave) and the MLflow mirror (after
the commit: a version that did not commit is never mirrored).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from modelyard.enums import ModelStage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.registry.artifacts import ArtifactStore
    from control_plane.registry.publisher import RepositoryPublisher
    from control_plane.registry.store import RegistryStore
    from modelyard.models import Feature, FeatureRef, RegisteredModel
    from modelyard.sketches import ReferenceProfile
    from modelyard.storage.audit import AuditLog
    from modelyard.storage.database import Database

SERVED_STAGES = (ModelStage.STAGING, ModelStage.PRODUCTION)


class FeatureResolver(Protocol):
    """The feature store as lineage needs it (the feature service implements it)."""

    async def resolve(self, refs: Sequence[FeatureRef]) -> Sequence[Feature]:
        """The feature versions ``refs`` name.

        Raises:
            NotFound: a (name, version) pair is not in the feature store.
        """
        ...


class ReferenceSink(Protocol):
    """Where a version's reference profile goes at registration (monitoring's drift service)."""

    async def store_reference(self, model: str, version: int, profile: ReferenceProfile) -> None:
        """Store ``profile`` as the reference of ``model`` ``version``."""
        ...


class ModelMirror(Protocol):
    """A second registry that mirrors ours (MLflow: :class:`~.mirror.MlflowMirror`)."""

    async def register(self, model: RegisteredModel, source: str) -> None:
        """Mirror a new version."""
        ...

    async def sync(self, versions: list[RegisteredModel]) -> None:
        """Mirror the stages and card statuses of one model's versions."""
        ...


class RegistryContext:
    """Dependencies of the registry services.

    Args:
        database: the platform database.
        store: the registry's SQL.
        audit_log: the platform audit log.
        artifacts: content-addressed ONNX files.
        publisher: the model repository writer.
        mirror: the MLflow mirror, or None to mirror nothing.
        features: the feature store, or None to accept lineage features unchecked.
        references: where reference profiles from registration samples go (set by the
            composition root once monitoring exists), or None.
    """

    def __init__(
        self,
        *,
        database: Database,
        store: RegistryStore,
        audit_log: AuditLog,
        artifacts: ArtifactStore,
        publisher: RepositoryPublisher,
        mirror: ModelMirror | None = None,
        features: FeatureResolver | None = None,
    ) -> None:
        self.database = database
        self.store = store
        self.audit_log = audit_log
        self.artifacts = artifacts
        self.publisher = publisher
        self.mirror = mirror
        self.features = features
        self.references: ReferenceSink | None = None

    async def publish(self, conn: AsyncConnection, name: str) -> None:
        """Make the repository serve the Staging and Production versions of ``name``."""
        versions = await self.store.list_versions(conn, name=name)
        served = {m.version: m.onnx_sha256 for m in versions if m.stage in SERVED_STAGES}
        production = next((m.version for m in versions if m.stage is ModelStage.PRODUCTION), None)
        await asyncio.to_thread(self.publisher.sync, name, served, production)

    async def mirror_model(self, name: str) -> None:
        """Mirror the stages and card statuses of every version of ``name``."""
        if self.mirror is None:
            return
        async with self.database.read() as conn:
            versions = await self.store.list_versions(conn, name=name)
        if versions:
            await self.mirror.sync(versions)
