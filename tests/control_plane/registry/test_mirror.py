"""MLflow mirroring against a real MLflow SQLite store in tmp_path: versions with their source
run, stages as aliases and tags (never MLflow's deprecated stages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.store.artifact.utils.models import get_model_name_and_version

from control_plane.registry.mirror import CARD_STATUS_TAG, STAGE_TAG, VERSION_TAG, MlflowMirror
from modelyard.enums import ModelStage
from modelyard.storage.database import Database
from tests.control_plane.registry.helpers import (
    APPROVER,
    DEVELOPER,
    approved_version,
    lineage,
    make_registry,
    registration,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


async def test_versions_stages_and_cards_are_mirrored_into_mlflow(
    database: Database, tmp_path: Path, tracking_uri: str
) -> None:
    mirror = MlflowMirror(tracking_uri)
    client: MlflowClient = mirror.client()
    experiment = client.create_experiment("churn", artifact_location=str(tmp_path / "mlruns"))
    run_id = client.create_run(experiment).info.run_id
    registry = make_registry(database, tmp_path, mirror=mirror)
    with_run = registration(lineage=lineage(mlflow_run_id=run_id))

    first = await registry.register("churn", with_run, DEVELOPER)
    mirrored = client.get_model_version("churn", "1")
    assert mirrored.run_id == run_id
    assert mirrored.tags[VERSION_TAG] == str(first.version)
    assert mirrored.tags[STAGE_TAG] == "None"
    assert mirrored.tags[CARD_STATUS_TAG] == "draft"

    await registry.cards.submit("churn", first.version, DEVELOPER)
    assert client.get_model_version("churn", "1").tags[CARD_STATUS_TAG] == "pending_review"
    second = await approved_version(registry, "churn")
    await registry.stages.transition("churn", second, ModelStage.STAGING, DEVELOPER)
    assert client.get_model_version_by_alias("churn", "staging").tags[VERSION_TAG] == "2"
    await registry.stages.transition("churn", second, ModelStage.PRODUCTION, APPROVER)

    assert get_model_name_and_version(client, "models:/churn@champion") == ("churn", 2)
    champion = client.get_model_version_by_alias("churn", "champion")
    assert champion.tags[VERSION_TAG] == str(second)
    assert champion.tags[STAGE_TAG] == "Production"
    assert champion.tags[CARD_STATUS_TAG] == "approved"
    assert champion.current_stage == "None"  # the deprecated stage API is never used
    assert "staging" not in client.get_registered_model("churn").aliases

    third = await approved_version(registry, "churn")
    await registry.stages.transition("churn", third, ModelStage.STAGING, DEVELOPER)
    await registry.stages.transition("churn", third, ModelStage.PRODUCTION, APPROVER)
    assert get_model_name_and_version(client, "models:/churn@champion") == ("churn", 3)
    assert client.get_model_version("churn", "2").tags[STAGE_TAG] == "Archived"
    production = await registry.production("churn")
    assert production.version == int(
        client.get_model_version_by_alias("churn", "champion").tags[VERSION_TAG]
    )
    assert client.get_model_version("churn", "1").run_id == run_id
