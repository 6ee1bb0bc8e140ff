"""Concurrent writers on SQLite and PostgreSQL: consecutive versions, no duplicates, no gaps."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from control_plane.features.service import FeatureService
from control_plane.features.tables import feature_versions
from modelyard.errors import AlreadyExists
from modelyard.storage import Database
from tests.control_plane.features.strategies import build_service, sample_definition, sample_update


async def test_20_concurrent_updates_get_versions_2_to_21(database: Database) -> None:
    # NOTE: separate service objects share nothing but the database, as separate processes.
    services = [build_service(database) for _ in range(20)]
    await services[0].create_feature(sample_definition("balance"), actor="alice")

    async def update(number: int, service: FeatureService) -> tuple[int, int]:
        update = sample_update(description=f"writer {number}")
        feature = await service.update_feature("balance", update, actor=f"writer-{number}")
        return number, feature.version

    results = await asyncio.gather(*(update(n, s) for n, s in enumerate(services)))
    assert sorted(version for _, version in results) == list(range(2, 22))
    history = await services[0].get_history("balance")
    assert [feature.version for feature in history] == list(range(1, 22))
    by_version = {feature.version: feature for feature in history}
    for number, version in results:
        assert by_version[version].description == f"writer {number}"
        assert by_version[version].created_by == f"writer-{number}"
    assert (await services[0].get_feature("balance")).version == 21
    async with database.read() as conn:
        rows = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(feature_versions.c.version)))
            )
        ).one()
    assert tuple(rows) == (21, 21), "never two rows with one version"


async def test_concurrent_creates_of_one_name_admit_exactly_one(database: Database) -> None:
    services = [build_service(database) for _ in range(8)]

    async def create(service: FeatureService) -> str:
        try:
            await service.create_feature(sample_definition("tenure"), actor="alice")
        except AlreadyExists:
            return "refused"
        return "created"

    outcomes = await asyncio.gather(*(create(service) for service in services))
    assert sorted(outcomes) == ["created"] + ["refused"] * 7
    assert [f.version for f in await services[0].get_history("tenure")] == [1]
