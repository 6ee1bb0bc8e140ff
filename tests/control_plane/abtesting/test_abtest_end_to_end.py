"""End to end: a real inference server and a real control plane over one model repository.

The control plane registers two versions and stages them (the registry publishes them into
the repository the server polls), creates a test over REST (route written to config.json and
pushed to the server's routes API with its admin token), and keyed traffic through the
server lands on exactly the variant the control plane computes for each key. The server's
prediction log writes every answer into the control plane's database; outcomes arrive through
``POST /v1/feedback``; the report recommends promoting the better treatment, and promotion
goes through the registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest

from control_plane.server import ControlPlaneServer
from inference_server.app import InferenceServer
from modelyard.enums import ModelStage
from modelyard.settings import (
    DatabaseSettings,
    PredictionLogSettings,
    ServerSettings,
    Settings,
    load_settings,
)
from modelyard.storage import Database, upgrade
from tests.control_plane.abtesting.helpers import definition
from tests.control_plane.conftest import admin_token
from tests.control_plane.registry.helpers import (
    APPROVER,
    DEVELOPER,
    approved_version,
    with_lineage_features,
)

ADMIN = "adm-" + "z" * 28
pytestmark = pytest.mark.slow


class Planes(msgspec.Struct):
    server: InferenceServer
    plane: ControlPlaneServer

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server.http_port}"


@pytest.fixture
async def planes(tmp_path: Path) -> AsyncIterator[Planes]:
    repo = tmp_path / "model-repository"
    repo.mkdir()
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    database = Database(url)  # migrated before the server's log writer connects
    await upgrade(database)
    await database.dispose()
    server = InferenceServer(
        Settings(
            database=DatabaseSettings(url=url),
            server=ServerSettings(
                model_repository=str(repo),
                grpc_port=0,
                http_port=0,
                metrics_port=None,
                control_mode="poll",
                poll_interval_s=0.2,
                admin_token=ADMIN,
            ),
            prediction_log=PredictionLogSettings(
                enabled=True, spool_dir=str(tmp_path / "spool"), fsync=False
            ),
        )
    )
    await server.start()
    settings = load_settings(environ={}, config_dir=None)
    settings = msgspec.structs.replace(
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
            model_repository=str(repo),
        ),
        control_plane=msgspec.structs.replace(
            settings.control_plane,
            admin_token_file=str(tmp_path / "admin-token"),
            inference_servers=(f"http://127.0.0.1:{server.http_port}",),
        ),
        server=msgspec.structs.replace(settings.server, admin_token=ADMIN),
    )
    plane = ControlPlaneServer(settings, port=0)
    await plane.start()
    try:
        yield Planes(server=server, plane=plane)
    finally:
        await plane.stop()
        await server.stop()


async def _wait_ready(client: httpx.AsyncClient, model: str, versions: list[int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answers = [await client.get(f"/v2/models/{model}/versions/{v}/ready") for v in versions]
        if all(a.status_code == 200 for a in answers):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"versions {versions} of {model} never became ready")


def _infer(key: str) -> dict[str, object]:
    return {
        "id": f"req-{key}",
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0.1] * 4}],
        "parameters": {"routing_key": key},
    }


async def test_keyed_traffic_outcomes_and_a_recommendation_through_both_planes(
    planes: Planes,
) -> None:
    services = planes.plane.services
    assert services is not None
    registry = services.registry
    await with_lineage_features(planes.plane)
    v1 = await approved_version(registry, "churn")
    v2 = await approved_version(registry, "churn")
    await registry.stages.transition("churn", v1, ModelStage.STAGING, DEVELOPER)
    await registry.stages.transition("churn", v1, ModelStage.PRODUCTION, APPROVER)
    await registry.stages.transition("churn", v2, ModelStage.STAGING, DEVELOPER)
    admin = {"Authorization": f"Bearer {admin_token(planes.plane)}"}
    body = msgspec.to_builtins(definition("churn", v1, v2, minimum_sample_size=100))
    async with (
        httpx.AsyncClient(base_url=planes.server_url, timeout=30) as server,
        httpx.AsyncClient(base_url=planes.plane.url, timeout=30, headers=admin) as plane,
    ):
        await _wait_ready(server, "churn", [v1, v2])
        created = await plane.post("/v1/ab-tests", json=body)
        assert created.status_code == 201, created.text
        change = created.json()
        assert change["servers"] == [
            {"server": planes.server_url, "applied": True, "workers_applied": 1, "error": None}
        ]
        test_id = change["test"]["id"]
        routes_answer = await server.get(
            "/v2/models/churn/routes", headers={"authorization": f"Bearer {ADMIN}"}
        )
        routes = routes_answer.json()["routes"]
        assert [(r["version"], r["variant"]) for r in routes] == [
            (v1, "control"),
            (v2, "treatment"),
        ]
        served = {}
        for i in range(120):
            key = f"user-{i}"
            answer = await server.post("/v2/models/churn/infer", json=_infer(key))
            assert answer.status_code == 200, answer.text
            expected = await plane.get(f"/v1/ab-tests/{test_id}/assignment", params={"key": key})
            assert int(answer.json()["model_version"]) == expected.json()["version"], key
            served[key] = int(answer.json()["model_version"])
        assert set(served.values()) == {v1, v2}
        for start in range(120, 800, 40):
            keys = [f"user-{i}" for i in range(start, start + 40)]
            answers = await asyncio.gather(
                *(server.post("/v2/models/churn/infer", json=_infer(k)) for k in keys)
            )
            served |= {
                k: int(a.json()["model_version"]) for k, a in zip(keys, answers, strict=True)
            }
        flushed = await server.post(
            "/v2/prediction_log/flush", headers={"authorization": f"Bearer {ADMIN}"}
        )
        assert flushed.status_code == 200, flushed.text
        # The business outcome: the treatment converts 30% of its users, the control 10%.
        rng = np.random.default_rng(17)
        outcomes = [
            {
                "request_id": f"req-{key}",
                "conversion": bool(rng.random() < (0.3 if v == v2 else 0.1)),
            }
            for key, v in served.items()
        ]
        fed = await plane.post("/v1/feedback", json={"outcomes": outcomes})
        assert fed.status_code == 200, fed.text
        assert fed.json()["unmatched"] == 0
        report = (await plane.get(f"/v1/ab-tests/{test_id}/report")).json()
        by_version = {v["version"]: v for v in report["variants"]}
        for version in (v1, v2):
            mine = sum(1 for v in served.values() if v == version)
            assert by_version[version]["requests"] == mine
            assert by_version[version]["outcomes"] == mine
        verdict = report["recommendation"]
        assert (verdict["action"], verdict["reason"]) == (
            "promote_treatment",
            "significant_improvement",
        )
        comparison = verdict["primary"]["comparison"]
        assert comparison["p_value"] < 0.05
        assert comparison["absolute_ci"][0] > 0
        assert verdict["sample_ratio"]["mismatch"] is False
        promoted = await plane.post(f"/v1/ab-tests/{test_id}/promote")
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["test"]["winner"] == v2
        assert promoted.json()["servers"][0]["applied"] is True
        assert (await registry.get("churn", v2)).stage is ModelStage.PRODUCTION
        answer = await server.post("/v2/models/churn/infer", json=_infer("user-0"))
        assert int(answer.json()["model_version"]) == v2


async def test_a_split_change_applies_on_the_servers_next_request(planes: Planes) -> None:
    services = planes.plane.services
    assert services is not None
    await with_lineage_features(planes.plane)
    registry = services.registry
    v1 = await approved_version(registry, "churn")
    v2 = await approved_version(registry, "churn")
    await registry.stages.transition("churn", v1, ModelStage.STAGING, DEVELOPER)
    await registry.stages.transition("churn", v2, ModelStage.STAGING, DEVELOPER)
    admin = {"Authorization": f"Bearer {admin_token(planes.plane)}"}
    body = msgspec.to_builtins(definition("churn", v1, v2))
    async with (
        httpx.AsyncClient(base_url=planes.server_url, timeout=30) as server,
        httpx.AsyncClient(base_url=planes.plane.url, timeout=30, headers=admin) as plane,
    ):
        await _wait_ready(server, "churn", [v1, v2])
        test_id = (await plane.post("/v1/ab-tests", json=body)).json()["test"]["id"]
        for weights, version in (((1.0, 0.0), v1), ((0.0, 1.0), v2), ((1.0, 0.0), v1)):
            split = {"weights": {str(v1): weights[0], str(v2): weights[1]}}
            changed = await plane.put(f"/v1/ab-tests/{test_id}/split", json=split)
            assert changed.status_code == 200, changed.text
            assert changed.json()["servers"][0]["workers_applied"] == 1
            answers = [
                await server.post("/v2/models/churn/infer", json=_infer(f"user-{i}"))
                for i in range(20)
            ]
            assert {int(a.json()["model_version"]) for a in answers} == {version}
