"""Mirror of registry versions in the MLflow Model Registry (aliases, never stages).

Each of our versions becomes an MLflow model version with its source run and the tag
``modelyard.version`` (MLflow numbers its versions itself; they match ours when every
registration is mirrored, the tag is the authority). Stages are mirrored as aliases —
``champion`` on the Production version, ``staging`` on the newest Staging version — and as
tags (``modelyard.stage``, ``modelyard.card_status``). MLflow's deprecated stage API is never
called. ``models:/<name>@champion`` therefore resolves to our Production version.

MLflow's client is synchronous; every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from modelyard.enums import ModelStage

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelyard.models import RegisteredModel

logger = logging.getLogger(__name__)

VERSION_TAG = "modelyard.version"
STAGE_TAG = "modelyard.stage"
CARD_STATUS_TAG = "modelyard.card_status"
CHAMPION = "champion"
STAGING = "staging"


class MlflowMirror:
    """Writes registry versions and stages into an MLflow Model Registry.

    Args:
        tracking_uri: MLflow tracking (and registry) URI, e.g. ``sqlite:///mlflow.db``.
    """

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self._client: Any = None
        self._lock = asyncio.Lock()

    def client(self) -> Any:
        """The MLflow client (created on first use: creating a SQLite store migrates it)."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    async def register(self, model: RegisteredModel, source: str) -> None:
        """Create the MLflow version of ``model`` with its source run and tags."""
        await self._run(self._register, model, source)

    async def sync(self, versions: list[RegisteredModel]) -> None:
        """Mirror stages and card statuses of one model's ``versions`` (tags and aliases)."""
        await self._run(self._sync, versions)

    async def _run(self, work: Callable[..., None], *args: Any) -> None:
        """Run one mirroring step in a thread, one at a time.

        The registry's change has committed already: a failing mirror is logged (the next
        change of the model mirrors its stages and tags again), never reported as the change
        failing.
        """
        from mlflow.exceptions import MlflowException

        async with self._lock:
            try:
                await asyncio.to_thread(work, *args)
            except MlflowException:
                logger.exception("mirroring into MLflow at %s failed", self.tracking_uri)

    def _register(self, model: RegisteredModel, source: str) -> None:
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            client.get_registered_model(model.name)
        except MlflowException:
            client.create_registered_model(model.name, description=model.description or None)
        if self._find(model.name, model.version) is not None:
            return
        client.create_model_version(
            model.name,
            source=source,
            run_id=model.lineage.mlflow_run_id or None,
            tags=_tags(model),
            description=model.description or None,
        )

    def _find(self, name: str, version: int) -> str | None:
        for found in self.client().search_model_versions(f"name='{name}'"):
            if found.tags.get(VERSION_TAG) == str(version):
                return str(found.version)
        return None

    def _sync(self, versions: list[RegisteredModel]) -> None:
        client = self.client()
        mapping = {
            str(v.tags.get(VERSION_TAG)): str(v.version)
            for name in {m.name for m in versions}
            for v in client.search_model_versions(f"name='{name}'")
        }
        for model in versions:
            mlflow_version = mapping.get(str(model.version))
            if mlflow_version is None:
                continue
            for key, value in _tags(model).items():
                client.set_model_version_tag(model.name, mlflow_version, key, value)
        for alias, stage in ((CHAMPION, ModelStage.PRODUCTION), (STAGING, ModelStage.STAGING)):
            self._set_alias(versions, mapping, alias, stage)

    def _set_alias(
        self,
        versions: list[RegisteredModel],
        mapping: dict[str, str],
        alias: str,
        stage: ModelStage,
    ) -> None:
        from mlflow.exceptions import MlflowException

        client = self.client()
        in_stage = [m.version for m in versions if m.stage is stage]
        target = mapping.get(str(max(in_stage))) if in_stage else None
        name = versions[0].name
        if target is not None:
            client.set_registered_model_alias(name, alias, target)
            return
        try:
            client.delete_registered_model_alias(name, alias)
        except MlflowException:
            logger.debug("alias %s of %s did not exist", alias, name)


def _tags(model: RegisteredModel) -> dict[str, str]:
    return {
        VERSION_TAG: str(model.version),
        STAGE_TAG: model.stage.value,
        CARD_STATUS_TAG: model.card_status.value,
    }
