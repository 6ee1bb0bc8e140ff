"""Publication into the model repository: atomic, complete or absent, confined to the folder."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path

import pytest

from control_plane.registry.artifacts import ArtifactStore
from control_plane.registry.publisher import RepositoryPublisher
from modelyard import model_repository as layout
from modelyard.enums import ModelStage
from modelyard.errors import InvalidArgument, NotFound
from modelyard.storage.database import Database
from tests.control_plane.registry.helpers import (
    ADMIN,
    APPROVER,
    DEVELOPER,
    approved_version,
    conversion,
    make_registry,
    registration,
)


async def test_staging_and_production_are_published_and_archiving_removes(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    model_dir = tmp_path / "repository" / "churn"
    v1 = await approved_version(registry, "churn")
    v2 = await approved_version(registry, "churn")
    assert not model_dir.exists()
    await registry.stages.transition("churn", v1, ModelStage.STAGING, DEVELOPER)
    assert sorted(layout.scan_model(model_dir)) == [v1]
    assert layout.read_model_config(model_dir).default_version is None
    await registry.stages.transition("churn", v1, ModelStage.PRODUCTION, APPROVER)
    await registry.stages.transition("churn", v2, ModelStage.STAGING, DEVELOPER)
    config = layout.read_model_config(model_dir)
    assert config.default_version == v1
    assert config.version_policy.versions == (v1, v2)
    assert (model_dir / str(v2) / "model.onnx").read_bytes() == conversion().onnx
    await registry.stages.transition("churn", v2, ModelStage.PRODUCTION, APPROVER)
    config = layout.read_model_config(model_dir)
    assert (config.default_version, config.version_policy.versions) == (v2, (v2,))
    assert sorted(layout.scan_model(model_dir)) == [v2]
    await registry.stages.transition("churn", v2, ModelStage.ARCHIVED, ADMIN)
    assert layout.scan_model(model_dir) == {}
    assert layout.read_model_config(model_dir).default_version is None


async def test_publication_keeps_the_batching_an_operator_left_to_the_server(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    model_dir = tmp_path / "repository" / "churn"
    v1 = await approved_version(registry, "churn")
    await registry.stages.transition("churn", v1, ModelStage.STAGING, DEVELOPER)
    assert "batching" not in json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({"batching": {"max_batch_size": 8}}))
    await registry.stages.transition("churn", v1, ModelStage.PRODUCTION, APPROVER)
    raw = json.loads((model_dir / "config.json").read_text())
    assert raw["batching"] == {"max_batch_size": 8}  # no key of the server's written out
    assert raw["default_version"] == v1


async def test_published_version_is_complete_or_absent_while_promotions_run(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    model_dir = tmp_path / "repository" / "churn"
    size = len(conversion().onnx)
    stop = threading.Event()
    seen: list[int] = []
    incomplete: list[str] = []

    def watch() -> None:
        while not stop.is_set():
            for entry in layout.scan_model(model_dir).values():
                seen.append(entry.version)
                if entry.fingerprint[0] != size:
                    incomplete.append(str(entry.path))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(4):
            version = await approved_version(registry, "churn")
            await registry.stages.transition("churn", version, ModelStage.STAGING, DEVELOPER)
            await registry.stages.transition("churn", version, ModelStage.PRODUCTION, APPROVER)
    finally:
        stop.set()
        await asyncio.to_thread(watcher.join)
    assert incomplete == []
    assert set(seen) <= {1, 2, 3, 4}
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []


async def test_republish_repairs_a_damaged_repository_folder(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    version = await approved_version(registry, "churn")
    await registry.stages.transition("churn", version, ModelStage.STAGING, DEVELOPER)
    await registry.stages.transition("churn", version, ModelStage.PRODUCTION, APPROVER)
    model_dir = tmp_path / "repository" / "churn"
    await asyncio.to_thread(shutil.rmtree, model_dir)
    await registry.stages.republish("churn")
    assert sorted(layout.scan_model(model_dir)) == [version]
    assert layout.read_model_config(model_dir).default_version == version
    with pytest.raises(NotFound):
        await registry.stages.republish("ghost")


async def test_failed_publication_leaves_no_version_and_no_stage_change(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    version = await approved_version(registry, "churn")
    artifact = ArtifactStore(tmp_path / "artifacts").path(conversion().sha256)
    artifact.unlink()
    with pytest.raises(FileNotFoundError):
        await registry.stages.transition("churn", version, ModelStage.STAGING, DEVELOPER)
    model_dir = tmp_path / "repository" / "churn"
    assert layout.scan_model(model_dir) == {}
    assert not model_dir.exists() or [p.name for p in model_dir.iterdir()] == []
    assert (await registry.get("churn", version)).stage is ModelStage.NONE
    with pytest.raises(NotFound):
        ArtifactStore(tmp_path / "artifacts").get(conversion().sha256)


def _written_outside_artifacts(root: Path) -> list[str]:
    """Files a refused registration left anywhere but the artifact store and the database."""
    inside = [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "artifacts" not in p.parts and not p.name.startswith("modelyard.db")
    ]
    outside = [str(p) for p in (root.parent / "x", root / "x") if p.exists()]
    return sorted(inside + outside)


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "..",
        ".",
        "a/b",
        "..\\x",
        ".hidden",
        "/etc/passwd",
        "x'; DROP TABLE model_versions; --",
        "' OR '1'='1",
        'churn"--',
        "name with space",
        "",
        "a" * 129,
        "churn\n",
    ],
)
async def test_unsafe_names_are_rejected_and_never_leave_the_repository(
    database: Database, tmp_path: Path, name: str
) -> None:
    registry = make_registry(database, tmp_path)
    with pytest.raises(InvalidArgument, match="invalid model name"):
        await registry.register(name, registration(), DEVELOPER)
    with pytest.raises(InvalidArgument):
        RepositoryPublisher(tmp_path / "repository", ArtifactStore(tmp_path / "a")).model_dir(name)
    assert await registry.list_versions() == []
    assert _written_outside_artifacts(tmp_path) == []


async def test_sql_metacharacters_in_free_text_are_stored_inertly(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    nasty = "'; DROP TABLE model_versions; -- \" \\ %_"
    model = await registry.register(
        "churn", registration(description=nasty, tags={nasty: nasty}), DEVELOPER
    )
    again = await registry.get("churn", model.version)
    assert (again.description, again.tags) == (nasty, {nasty: nasty})
    assert await registry.list_versions(name=nasty) == []
    assert len(await registry.list_versions()) == 1


async def test_publication_drops_the_batching_defaults_an_older_registry_pinned(
    database: Database, tmp_path: Path
) -> None:
    from tests.modelyard.test_model_repository import LEGACY_REGISTRY_FILES

    registry = make_registry(database, tmp_path)
    model_dir = tmp_path / "repository" / "churn"
    v1 = await approved_version(registry, "churn")
    await registry.stages.transition("churn", v1, ModelStage.STAGING, DEVELOPER)
    legacy = json.loads(LEGACY_REGISTRY_FILES[2])
    legacy["batching"]["max_batch_size"] = 8  # the one key an operator had chosen
    (model_dir / "config.json").write_text(json.dumps(legacy))
    await registry.stages.transition("churn", v1, ModelStage.PRODUCTION, APPROVER)
    raw = json.loads((model_dir / "config.json").read_text())
    assert raw["batching"] == {"max_batch_size": 8}  # only what the operator chose
    assert raw["default_version"] == v1
