"""A real control plane (port 0) with fast notification retries, on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from control_plane.server import ControlPlaneServer
from modelyard.settings import load_settings
from tests.conftest import POSTGRES_URL, PostgresSchema


@pytest.fixture
async def monitored_plane(backend: str, tmp_path: Path) -> AsyncIterator[ControlPlaneServer]:
    """A started control plane whose notifications retry within tens of milliseconds."""
    async with started_plane(backend, tmp_path, {}) as server:
        yield server


@asynccontextmanager
async def started_plane(
    backend: str, tmp_path: Path, extra: dict[str, str]
) -> AsyncIterator[ControlPlaneServer]:
    """A started control plane (fast retries and ticks) with ``extra`` settings variables."""
    environ = {
        "MODELYARD_MONITORING_NOTIFY_BACKOFF_S": "0.02",
        "MODELYARD_MONITORING_NOTIFY_BACKOFF_MAX_S": "0.05",
        "MODELYARD_MONITORING_NOTIFY_MAX_ATTEMPTS": "3",
        "MODELYARD_MONITORING_NOTIFY_POLL_S": "0.02",
        "MODELYARD_SCHEDULER_TICK_S": "0.1",
        "MODELYARD_CONTROL_PLANE_ADMIN_TOKEN_FILE": str(tmp_path / "admin-token"),
        "MODELYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MODELYARD_TRACKING_ARTIFACT_ROOT": str(tmp_path / "mlartifacts"),
        "MODELYARD_REGISTRY_ARTIFACT_STORE": str(tmp_path / "artifacts"),
        "MODELYARD_REGISTRY_MODEL_REPOSITORY": str(tmp_path / "model-repository"),
        "MODELYARD_DATABASE_URL": f"sqlite:///{tmp_path / 'modelyard.db'}",
    }
    environ.update(extra)
    schema: PostgresSchema | None = None
    if backend == "postgresql":
        schema = PostgresSchema()
        await schema.create()
        environ["MODELYARD_DATABASE_URL"] = POSTGRES_URL
    settings = load_settings(environ=environ, config_dir=None)
    server = ControlPlaneServer(settings, port=0, schema=schema.name if schema else None)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        if schema is not None:
            await schema.drop()
