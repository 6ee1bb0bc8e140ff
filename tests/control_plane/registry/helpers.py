"""Registry test material: a tiny real ONNX model, complete cards and lineage, principals."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from sklearn.linear_model import LogisticRegression

from control_plane.registry.artifacts import ArtifactStore
from control_plane.registry.card_rules import minimal_card_data
from control_plane.registry.context import ModelMirror, RegistryContext
from control_plane.registry.models import ModelRegistration
from control_plane.registry.publisher import RepositoryPublisher
from control_plane.registry.service import RegistryService
from control_plane.registry.store import RegistryStore
from control_plane.security.models import Principal
from control_plane.server import ControlPlaneServer
from converters import ConversionResult, convert
from modelyard.enums import Role
from modelyard.models import DatasetRef, FeatureRef, ModelCard, ModelLineage
from modelyard.storage.audit import AuditLog
from modelyard.storage.database import Database

DEVELOPER = Principal(name="dev", role=Role.DEVELOPER, token_id="t-dev")
OTHER_DEVELOPER = Principal(name="dev2", role=Role.DEVELOPER, token_id="t-dev2")
APPROVER = Principal(name="ann", role=Role.APPROVER, token_id="t-ann")
ADMIN = Principal(name="root", role=Role.ADMIN, token_id="t-root")
VIEWER = Principal(name="vic", role=Role.VIEWER, token_id="t-vic")


@functools.cache
def conversion() -> ConversionResult:
    """A real converted LogisticRegression (4 features, 3 classes), built once."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    model = LogisticRegression(max_iter=200).fit(x, y)
    return convert(model, x[:20])


def card(**overrides: Any) -> ModelCard:
    """A complete card, with top-level fields replaced by ``overrides``."""
    return msgspec.convert(minimal_card_data() | overrides, ModelCard)


def lineage(
    features: tuple[tuple[str, int], ...] = (("age", 1),), **overrides: Any
) -> ModelLineage:
    """Complete lineage."""
    values: dict[str, Any] = {
        "mlflow_run_id": "run-1",
        "training_dataset": DatasetRef(uri="file:///data/train.parquet", sha256="ab" * 32),
        "features": tuple(FeatureRef(name=n, version=v) for n, v in features),
        "code_version": "0123456789abcdef0123456789abcdef01234567",
        "hyperparameters": {"C": 1.0, "max_iter": 200},
    }
    return ModelLineage(**(values | overrides))


def registration(**overrides: Any) -> ModelRegistration:
    """A valid registration of the tiny model."""
    result = conversion()
    values: dict[str, Any] = {
        "onnx": result.onnx,
        "signature": result.signature,
        "card": card(),
        "lineage": lineage(),
        "fidelity": {"max_abs_diff": result.fidelity.max_abs_diff},
    }
    return ModelRegistration(**(values | overrides))


def make_registry(
    database: Database, root: Path, mirror: ModelMirror | None = None
) -> RegistryService:
    """A registry over ``database`` with its artifact store and repository under ``root``."""
    artifacts = ArtifactStore(root / "artifacts")
    context = RegistryContext(
        database=database,
        store=RegistryStore(database.dialect),
        audit_log=AuditLog(database),
        artifacts=artifacts,
        publisher=RepositoryPublisher(root / "repository", artifacts),
        mirror=mirror,
    )
    return RegistryService(context)


async def approved_version(registry: RegistryService, name: str) -> int:
    """Register a version of ``name`` and take its card through review to approved."""
    model = await registry.register(name, registration(), DEVELOPER)
    await registry.cards.submit(name, model.version, DEVELOPER)
    await registry.cards.review(name, model.version, _approved(), APPROVER)
    return model.version


def _approved() -> Any:
    from control_plane.registry.models import ReviewDecision

    return ReviewDecision.APPROVED


def admin_token_of(server: ControlPlaneServer) -> str:
    """The first admin token a control plane wrote on its first start."""
    return Path(server.settings.control_plane.admin_token_file).read_text().strip()


async def with_lineage_features(server: ControlPlaneServer) -> None:
    """Create the feature the default lineage names (``age`` version 1) in the feature store."""
    from tests.control_plane.features.strategies import sample_definition

    assert server.services is not None
    await server.services.feature_service.create_feature(sample_definition("age"), actor="admin")
