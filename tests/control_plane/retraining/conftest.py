"""Control-plane services on a private event loop, over each backend, for retraining tests.

Retraining runs in real worker processes against a real MLflow store (copied from the session
template) and a real model repository, all under ``tmp_path`` (or a fresh PostgreSQL schema).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from control_plane.app import ControlPlaneServices
from modelyard.settings import Settings, load_settings
from tests.conftest import POSTGRES_URL, PostgresSchema
from tests.control_plane.mlflow_fixtures import copy_store, mlflow_template

T = TypeVar("T")

__all__ = ["mlflow_template"]


def settings_in(tmp_path: Path, database_url: str, mlflow_uri: str) -> Settings:
    """Embedded-default settings with every piece of state under ``tmp_path``."""
    base = load_settings(environ={}, config_dir=None)
    replace = msgspec.structs.replace
    return replace(
        base,
        database=replace(base.database, url=database_url),
        tracking=replace(
            base.tracking, uri=mlflow_uri, artifact_root=str(tmp_path / "mlartifacts")
        ),
        registry=replace(
            base.registry,
            artifact_store=str(tmp_path / "artifacts"),
            model_repository=str(tmp_path / "model-repository"),
            mirror_to_mlflow=False,
        ),
        control_plane=replace(base.control_plane, admin_token_file=str(tmp_path / "admin-token")),
        scheduler=replace(base.scheduler, enabled=False),
        retraining=replace(base.retraining, heartbeat_s=0.5, stale_after_s=5.0),
    )


class Services:
    """Opened control-plane services and the loop they live on."""

    def __init__(self, runner: asyncio.Runner, services: ControlPlaneServices, root: Path):
        self._runner = runner
        self.services = services
        self.root = root

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the services' loop."""
        return self._runner.run(coro)


@pytest.fixture
def services(backend: str, tmp_path: Path, mlflow_template: Path) -> Iterator[Services]:
    """Opened services (migrated database, tokens, retraining) on ``backend``."""
    mlflow_uri = copy_store(mlflow_template, tmp_path)
    schema: PostgresSchema | None = None
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    with asyncio.Runner() as runner:
        if backend == "postgresql":
            schema = PostgresSchema()
            runner.run(schema.create())
            url = POSTGRES_URL
        settings = settings_in(tmp_path, url, mlflow_uri)
        opened = runner.run(
            ControlPlaneServices.open(settings, schema=None if schema is None else schema.name)
        )
        try:
            yield Services(runner, opened, tmp_path)
        finally:
            runner.run(opened.close())
            if schema is not None:
                runner.run(schema.drop())
