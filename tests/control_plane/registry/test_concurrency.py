"""Concurrency: registrations never share a version; promotions leave one Production version."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelyard import model_repository as layout
from modelyard.enums import ModelStage
from modelyard.storage.audit import AuditLog
from modelyard.storage.database import Database
from tests.control_plane.registry.helpers import (
    APPROVER,
    DEVELOPER,
    approved_version,
    make_registry,
    registration,
)


async def test_20_concurrent_registrations_get_versions_1_to_20(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    models = await asyncio.gather(
        *(registry.register("churn", registration(), DEVELOPER) for _ in range(20))
    )
    assert sorted(m.version for m in models) == list(range(1, 21))
    stored = [m.version for m in await registry.list_versions(name="churn")]
    assert stored == list(range(1, 21))
    events = await AuditLog(database).list(entity_kind="model_version", limit=1000)
    assert sorted(e.entity for e in events if e.action == "register") == sorted(
        f"churn/{v}" for v in range(1, 21)
    )


async def test_10_concurrent_promotions_leave_exactly_one_production(
    database: Database, tmp_path: Path
) -> None:
    registry = make_registry(database, tmp_path)
    versions = [await approved_version(registry, "churn") for _ in range(10)]
    for version in versions:
        await registry.stages.transition("churn", version, ModelStage.STAGING, DEVELOPER)
    await asyncio.gather(
        *(
            registry.stages.transition("churn", v, ModelStage.PRODUCTION, APPROVER, "race")
            for v in versions
        )
    )
    production = await registry.list_versions(name="churn", stage=ModelStage.PRODUCTION)
    assert len(production) == 1
    archived = await registry.list_versions(name="churn", stage=ModelStage.ARCHIVED)
    assert len(archived) == 9
    winner = production[0].version
    model_dir = tmp_path / "repository" / "churn"
    config = layout.read_model_config(model_dir)
    assert config.default_version == winner
    assert config.version_policy.versions == (winner,)
    assert sorted(layout.scan_model(model_dir)) == [winner]
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".")] == []
