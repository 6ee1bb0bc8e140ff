"""Drift monitoring through a real control plane (port 0) reading two sketch servers, both
backends: reference, policy, checks, reports as JSON, and the HTML report rendered by
headless Chromium with a chart per feature."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from control_plane.monitoring.report_page import CURRENT_COLOUR, REFERENCE_COLOUR
from control_plane.server import ControlPlaneServer
from modelyard.enums import ModelStage
from tests.control_plane.conftest import admin_token
from tests.control_plane.monitoring.conftest import started_plane
from tests.control_plane.monitoring.drift_helpers import (
    TOKEN,
    SketchServer,
    sample,
    scores,
    window_of,
)
from tests.control_plane.pages import pixels_of, render
from tests.control_plane.registry.helpers import DEVELOPER, registration, with_lineage_features

WINDOW = {"since": "2026-12-04T11:00:00Z", "until": "2026-12-04T12:00:00Z"}


@pytest.fixture
async def plane_with_servers(
    backend: str, tmp_path: Path
) -> AsyncIterator[tuple[ControlPlaneServer, list[SketchServer]]]:
    servers = [SketchServer(), SketchServer()]
    for server in servers:
        await server.start()
    extra = {
        "MODELYARD_CONTROL_PLANE_INFERENCE_SERVERS": ",".join(s.base_url for s in servers),
        "MODELYARD_SERVER_ADMIN_TOKEN": TOKEN,
    }
    try:
        async with started_plane(backend, tmp_path, extra) as plane:
            yield plane, servers
    finally:
        for server in servers:
            await server.stop()


async def test_drift_over_rest_and_the_html_report_in_chromium(
    plane_with_servers: tuple[ControlPlaneServer, list[SketchServer]], tmp_path: Path
) -> None:
    plane, servers = plane_with_servers
    services = plane.services
    assert services is not None
    await with_lineage_features(plane)
    model = await services.registry.register("churn", registration(), DEVELOPER)
    admin = {"Authorization": f"Bearer {admin_token(plane)}"}
    rng = np.random.default_rng(3)
    body = {"columns": sample(rng, 1500), "score": scores(rng, 1500)}
    base = f"/v1/monitoring/models/churn/versions/{model.version}"
    async with httpx.AsyncClient(base_url=plane.url, timeout=60) as client:
        assert (await client.put(f"{base}/reference", json=body)).status_code == 401
        missing = await client.put(
            "/v1/monitoring/models/churn/versions/99/reference", json=body, headers=admin
        )
        assert missing.status_code == 404
        stored = await client.put(f"{base}/reference", json=body, headers=admin)
        assert stored.status_code == 200, stored.text
        assert stored.json()["rows"] == 1500
        ragged = {"columns": {"a": [1.0, 2.0], "b": [1.0]}}
        assert (
            await client.put(f"{base}/reference", json=ragged, headers=admin)
        ).status_code == 422
        policy = {"drift_share": 0.4, "features": {"plan": {"threshold": 0.2}}}
        assert (
            await client.put("/v1/monitoring/models/churn/drift-policy", json=policy, headers=admin)
        ).status_code == 200
        assert (await client.get("/v1/monitoring/models/churn/drift-policy")).json()[
            "drift_share"
        ] == 0.4

        profile = await services.monitoring.drift.reference("churn", model.version)
        for server in servers:
            server.windows[("churn", model.version)] = window_of(
                "churn", model.version, profile, sample(rng, 700, 1.0), scores(rng, 700, 1.0)
            )
        checked = await client.post(f"{base}/drift-checks", json=WINDOW, headers=admin)
        assert checked.status_code == 201, checked.text
        report = checked.json()
        assert report["drifted"]
        assert report["rows"] == 1400
        plan = next(f for f in report["result"]["features"] if f["feature"] == "plan")
        assert plan["threshold"] == 0.2
        alerts = (await client.get("/v1/monitoring/alerts", params={"type": "drift"})).json()
        assert [a["id"] for a in alerts] == [report["alert_id"]]
        listed = (
            await client.get("/v1/monitoring/drift-reports", params={"model": "churn"})
        ).json()
        assert [r["id"] for r in listed] == [report["id"]]
        page = await client.get(f"/v1/monitoring/drift-reports/{report['id']}/html")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert (await client.get("/v1/monitoring/drift-reports/999/html")).status_code == 404
        no_traffic = await client.post(
            "/v1/monitoring/models/churn/versions/99/drift-checks", json=WINDOW, headers=admin
        )
        assert no_traffic.status_code == 404

        await services.registry.stages.transition(
            "churn", model.version, ModelStage.STAGING, DEVELOPER
        )
        # published with the version itself (same rename as model.onnx): nothing left to sweep
        assert await services.monitoring.drift.publish_references() == 0
        published = (
            Path(services.settings.registry.model_repository)
            / "churn"
            / str(model.version)
            / "reference.json"
        )
        assert published.is_file()

    dom, picture = await asyncio.to_thread(
        render,
        f"{plane.url}/v1/monitoring/drift-reports/{report['id']}/html",
        tmp_path / "report.png",
        height=2600,
    )
    assert "DRIFTED" in dom
    for feature in ("charges", "plan", "tenure", "score"):
        assert f'data-feature="{feature}"' in dom
    assert dom.count('<rect class="reference"') >= 4 * 3
    assert pixels_of(picture, REFERENCE_COLOUR) > 2000  # the bars were painted
    assert pixels_of(picture, CURRENT_COLOUR) > 2000
