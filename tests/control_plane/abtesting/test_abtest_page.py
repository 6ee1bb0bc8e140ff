"""The test's HTML page, rendered by headless Chromium from live data: records in the prediction
log (inserted as an inference server writes them), outcomes through ``POST /v1/feedback``."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import httpx
import msgspec
import numpy as np
import pytest

from control_plane.server import ControlPlaneServer
from modelyard.prediction_log import PredictionRecord, prediction_log, record_values
from tests.control_plane.abtesting.helpers import definition
from tests.control_plane.abtesting.test_abtest_cli_rest import _staged
from tests.control_plane.pages import pixels_of, render
from tests.control_plane.registry.helpers import admin_token_of

pytestmark = pytest.mark.slow


def _attribute(dom: str, element: str, selector: str, name: str) -> str:
    match = re.search(rf"<{element}[^>]*{selector}[^>]*>", dom)
    assert match is not None, f"{element} {selector} missing"
    found = re.search(rf'{name}="([^"]*)"', match.group(0))
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_page_renders_variant_metrics_and_lift_from_live_data(
    control_plane: ControlPlaneServer, tmp_path: Path
) -> None:
    v1, v2 = await _staged(control_plane)
    services = control_plane.services
    assert services is not None
    admin = {"Authorization": f"Bearer {admin_token_of(control_plane)}"}
    async with httpx.AsyncClient(base_url=control_plane.url, headers=admin, timeout=60) as client:
        body = msgspec.to_builtins(definition("churn", v1, v2, minimum_sample_size=200))
        created = await client.post("/v1/ab-tests", json=body)
        assert created.status_code == 201, created.text
        test = created.json()["test"]
        start = dt.datetime.fromisoformat(test["phase_started_at"]) + dt.timedelta(seconds=1)
        rng = np.random.default_rng(4)
        records, outcomes = [], []
        for version, variant, rate in ((v1, "control", 0.10), (v2, "treatment", 0.20)):
            for i in range(600):
                request_id = f"{variant}-{i}"
                records.append(
                    PredictionRecord(
                        request_id=request_id,
                        row_index=0,
                        created_at=start + dt.timedelta(seconds=i),
                        model="churn",
                        version=version,
                        variant=variant,
                        protocol="http",
                        latency_ms=float(rng.gamma(2.0, 1.0)),
                        inputs={"f0": 0.1},
                        outputs={"label": 1},
                    )
                )
                outcomes.append({"request_id": request_id, "conversion": bool(rng.random() < rate)})
        async with services.database.write() as conn:
            await conn.execute(prediction_log.insert(), [record_values(r) for r in records])
        fed = await client.post("/v1/feedback", json={"outcomes": outcomes})
        assert fed.status_code == 200, fed.text
        report = (await client.get(f"/v1/ab-tests/{test['id']}/report?points=24")).json()
    # The control plane serves from this event loop: Chromium runs in a thread.
    page = f"{control_plane.url}/v1/ab-tests/{test['id']}/page"
    dom, picture = await asyncio.to_thread(render, page, tmp_path / "p.png", height=1200)
    assert report["recommendation"]["action"] == "promote_treatment"
    assert _attribute(dom, "p", 'id="recommendation"', "data-action") == "promote_treatment"
    last = report["series"][-1]
    for version in (v1, v2):
        drawn = _attribute(dom, "polyline", f'data-version="{version}"', "data-last")
        assert float(drawn) == pytest.approx(last["means"][str(version)])
    for bound in ("low", "high"):
        drawn = _attribute(dom, "polyline", 'class="lift"', f"data-{bound}")
        assert float(drawn) == pytest.approx(last["lift"][bound])
    assert 'id="means-chart" data-points="24"' in dom
    assert "<polygon" in dom
    assert pixels_of(picture, "#1f77b4") > 200  # control line and the lift line
    assert pixels_of(picture, "#d62728") > 100  # treatment line
