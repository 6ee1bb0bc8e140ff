"""Build the registry's services from the settings (called by the composition root)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from control_plane.registry.artifacts import ArtifactStore
from control_plane.registry.context import RegistryContext
from control_plane.registry.mirror import MlflowMirror
from control_plane.registry.publisher import RepositoryPublisher
from control_plane.registry.service import RegistryService
from control_plane.registry.store import RegistryStore

if TYPE_CHECKING:
    from control_plane.registry.context import FeatureResolver
    from modelyard.settings import Settings
    from modelyard.storage.audit import AuditLog
    from modelyard.storage.database import Database


def build_registry(
    settings: Settings,
    database: Database,
    audit_log: AuditLog,
    features: FeatureResolver | None = None,
) -> RegistryService:
    """The registry over ``database`` with the artifact store, repository and mirror of
    ``settings``; ``features`` checks lineage features when given."""
    artifacts = ArtifactStore(Path(settings.registry.artifact_store))
    context = RegistryContext(
        database=database,
        store=RegistryStore(database.dialect),
        audit_log=audit_log,
        artifacts=artifacts,
        publisher=RepositoryPublisher(
            Path(settings.registry.model_repository),
            artifacts,
            references=Path(settings.registry.artifact_store) / "references",
        ),
        mirror=MlflowMirror(settings.tracking.uri) if settings.registry.mirror_to_mlflow else None,
        features=features,
    )
    return RegistryService(context)
