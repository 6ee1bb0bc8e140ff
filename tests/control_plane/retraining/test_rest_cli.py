"""Retraining over REST and the CLI against a running control plane."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from control_plane.server import ControlPlaneServer
from tests.control_plane.conftest import admin_token
from tests.control_plane.retraining.helpers import (
    TARGET,
    churn_table,
    production_version,
    weak_model,
)

pytestmark = pytest.mark.slow


async def _cli(tmp_path: Path, *args: str, token: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["MODELYARD_CONTROL_PLANE_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelyard",
        "retrain",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_rest_and_cli(control_plane: ControlPlaneServer, tmp_path: Path) -> None:
    services = control_plane.services
    assert services is not None
    frame = churn_table(3)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    await production_version(services, "rest-model", weak_model(frame), frame)
    token = admin_token(control_plane)
    spec = {"data": str(data), "target": TARGET, "trainer": "lightgbm", "min_improvement": 0.01}
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=60) as client:
        anonymous = await client.put("/v1/retraining/specs/rest-model", json=spec)
        assert anonymous.status_code == 401
        headers = {"Authorization": f"Bearer {token}"}
        typo = await client.put(
            "/v1/retraining/specs/rest-model",
            json=spec | {"primary_metrc": "auc"},
            headers=headers,
        )
        assert typo.status_code == 422
        assert "primary_metrc" in typo.json()["error"]
        never = await client.put(
            "/v1/retraining/specs/rest-model",
            json=spec | {"schedule": "0 0 30 2 *"},
            headers=headers,
        )  # accepted before, and then no scheduled job of the control plane ran again
        assert never.status_code == 422
        assert "never matches" in never.json()["error"]
        bad_name = await client.put("/v1/retraining/specs/..%2Fetc", json=spec, headers=headers)
        assert bad_name.status_code in (400, 404)
        saved = await client.put("/v1/retraining/specs/rest-model", json=spec, headers=headers)
        assert saved.status_code == 200, saved.text
        assert saved.json()["schedule"] == "0 3 * * 1", "weekly by default"
        missing = await client.get("/v1/retraining/runs/" + "0" * 32, headers=headers)
        assert missing.status_code == 404
        assert "not found" in missing.json()["error"]

    url = f"--url={control_plane.url}"
    code, out, err = await _cli(
        tmp_path, "trigger", "rest-model", "--wait", url, "--reason", "cli test", token=token
    )
    assert code == 0, err
    assert "run " in out
    assert "decision" in out
    run_id = out.split()[1]
    code, out, err = await _cli(tmp_path, "list", url, "--model", "rest-model", token=token)
    assert code == 0, err
    assert out.startswith(run_id)
    assert "manual" in out
    code, out, err = await _cli(tmp_path, "status", run_id, url, token=token)
    assert code == 0, err
    assert "evaluate" in out
    code, _, err = await _cli(tmp_path, "resume", run_id, url, token=token)
    assert code == 2
    assert "error:" in err
