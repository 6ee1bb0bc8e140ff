"""A real control plane on a free loopback port, over each storage backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec
import pytest

from control_plane.server import ControlPlaneServer
from modelyard.settings import Settings, load_settings
from tests.conftest import POSTGRES_URL, PostgresSchema


def control_plane_settings(tmp_path: Path, url: str) -> Settings:
    """Settings whose state lives in ``tmp_path`` and the database at ``url``."""
    settings = load_settings(environ={}, config_dir=None)
    return msgspec.structs.replace(
        settings,
        database=msgspec.structs.replace(settings.database, url=url),
        tracking=msgspec.structs.replace(
            settings.tracking,
            uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            artifact_root=str(tmp_path / "mlartifacts"),
        ),
        registry=msgspec.structs.replace(
            settings.registry,
            artifact_store=str(tmp_path / "artifacts"),
            model_repository=str(tmp_path / "model-repository"),
        ),
        control_plane=msgspec.structs.replace(
            settings.control_plane, admin_token_file=str(tmp_path / "admin-token")
        ),
    )


@asynccontextmanager
async def started_control_plane(backend: str, tmp_path: Path) -> AsyncIterator[ControlPlaneServer]:
    """A started control plane (port 0) whose state lives in ``tmp_path`` / a fresh schema."""
    schema: PostgresSchema | None = None
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    if backend == "postgresql":
        schema = PostgresSchema()
        await schema.create()
        url = POSTGRES_URL
    settings = control_plane_settings(tmp_path, url)
    server = ControlPlaneServer(settings, port=0, schema=schema.name if schema else None)
    await server.start()
    try:
        yield server
    finally:
        try:
            await server.stop()  # its database warns (an error here) if a task outlived stop()
        finally:
            if schema is not None:
                await schema.drop()


@pytest.fixture
async def control_plane(backend: str, tmp_path: Path) -> AsyncIterator[ControlPlaneServer]:
    """A started control plane (port 0) whose state lives in ``tmp_path`` / a fresh schema."""
    async with started_control_plane(backend, tmp_path) as server:
        yield server


def admin_token(server: ControlPlaneServer) -> str:
    """The admin API token a control plane wrote on its first start (changes need a token)."""
    return Path(server.settings.control_plane.admin_token_file).read_text().strip()
