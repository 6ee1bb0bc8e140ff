"""The demo, shortened, through real processes: each step's outcome is checked, not just exit 0.

The demo runs as a user runs it (``python -m modelyard demo`` in an empty folder, embedded
defaults) with ``--keep-running`` so this test can inspect the live services afterwards; the
test stops them itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest

from examples.churn.features import engineer
from examples.churn.traffic import grpc_probabilities, http_probabilities
from modelyard.datasets import generate_churn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the shortened demo once; yield its summary; stop what it left running."""
    workdir = tmp_path_factory.mktemp("demo")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MODELYARD_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            "demo",
            "--rows",
            "3000",
            "--trials",
            "3",
            "--seconds",
            "1",
            "--ab-requests",
            "800",
            "--drift-requests",
            "2000",
            "--batch-rows",
            "20000",
            "--keep-running",
            "--summary",
            "summary.json",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = json.loads((workdir / "summary.json").read_text()) if result.returncode == 0 else {}
    try:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield summary | {"workdir": workdir, "stdout": result.stdout}
    finally:
        for pid in summary.get("pids", []):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)


def test_progress_is_visible(demo_run: dict[str, Any]) -> None:
    for step in (f"[{n}/8]" for n in range(1, 9)):
        assert step in demo_run["stdout"]
    assert "mlflow ui --backend-store-uri" in demo_run["stdout"]


def test_the_version_is_in_production(demo_run: dict[str, Any]) -> None:
    model = demo_run["model"]
    with httpx.Client(base_url=demo_run["control_plane_url"]) as client:
        production = client.get(f"/v1/models/{model['name']}/production").json()
    assert production["version"] == model["version"]
    assert production["stage"] == "Production"


def test_the_card_was_approved_by_a_different_principal(demo_run: dict[str, Any]) -> None:
    model = demo_run["model"]
    path = f"/v1/models/{model['name']}/versions/{model['version']}/card"
    with httpx.Client(base_url=demo_run["control_plane_url"]) as client:
        card = client.get(path).json()
        # The audit log is for admins and auditors (docs/operations.md).
        token = (demo_run["workdir"] / ".modelyard" / "admin-token").read_text().strip()
        audit = client.get(
            "/v1/audit",
            params={"entity_kind": "model_card"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    assert card["status"] == "approved"
    approvals = [r for r in card["reviews"] if r["to_status"] == "approved"]
    assert [r["actor"] for r in approvals] == ["demo-approver"]
    assert approvals[0]["card_sha256"] == card["card_sha256"]
    assert model["registered_by"] == "churn-pipeline" != approvals[0]["actor"]
    audited = [e for e in audit if e["to_state"] == "approved"]
    assert [e["actor"] for e in audited] == ["demo-approver"]


def test_predictions_over_both_protocols_equal_the_native_model(demo_run: dict[str, Any]) -> None:
    native = joblib.load(demo_run["native_model_path"])
    features = engineer(generate_churn(300, seed=99).frame).astype(np.float32)
    expected = native.predict_proba(features)
    rows = features.to_numpy()
    ports, name = demo_run["ports"], demo_run["model"]["name"]
    over_grpc = asyncio.run(grpc_probabilities(f"127.0.0.1:{ports['grpc_port']}", name, rows))
    over_http = asyncio.run(
        http_probabilities(f"http://127.0.0.1:{ports['http_port']}", name, rows)
    )
    tolerance = demo_run["agreement"]["tolerance"]
    assert np.max(np.abs(over_grpc - expected)) <= tolerance
    assert np.max(np.abs(over_http - expected)) <= tolerance


def test_traffic_was_scored_without_errors(demo_run: dict[str, Any]) -> None:
    loads = {entry["protocol"]: entry for entry in demo_run["load"]}
    assert set(loads) == {"gRPC", "HTTP"}
    for entry in loads.values():
        assert entry["requests"] > 0
        assert entry["errors"] == 0
        assert 0 < entry["p50_ms"] <= entry["p99_ms"]


def test_the_published_model_is_the_registered_artifact(demo_run: dict[str, Any]) -> None:
    repository = Path(demo_run["repository"])
    model = demo_run["model"]
    published = repository / model["name"] / str(model["version"]) / "model.onnx"
    assert published.is_file()
    config = json.loads((repository / model["name"] / "config.json").read_text())
    assert str(config.get("default_version")) == str(model["version"])


def test_the_ab_test_ran_on_both_versions_and_recommends(demo_run: dict[str, Any]) -> None:
    ab = demo_run["ab_test"]
    assert ab["served"]["control"] > 0
    assert ab["served"]["treatment"] > 0
    assert ab["outcomes"] == 800
    roles = {v["role"]: v for v in ab["variants"]}
    assert set(roles) == {"control", "treatment"}
    for variant in roles.values():
        assert variant["outcomes"] > 0
        assert variant["outcomes"] <= variant["requests"]
    recommendation = ab["recommendation"]
    assert recommendation["action"] in ("promote_treatment", "keep_control", "keep_collecting")
    assert recommendation["detail"]


def test_drift_alerted_notified_and_retrained(demo_run: dict[str, Any]) -> None:
    monitored = demo_run["monitoring"]
    assert monitored["report"]["drifted"] is True
    assert monitored["drifted_features"]
    assert monitored["alert"]["type"] == "drift"
    assert monitored["signature_valid"] is True
    retraining = monitored["retraining"]
    assert retraining["status"] in ("promoted", "rejected")
    assert retraining["comparison"]["production_version"] == demo_run["model"]["version"]
    if retraining["status"] == "promoted":
        assert monitored["candidate_ready"] is True
        with httpx.Client(base_url=demo_run["control_plane_url"]) as client:
            token = (demo_run["workdir"] / ".modelyard" / "admin-token").read_text().strip()
            path = f"/v1/models/{demo_run['model']['name']}/versions/"
            candidate = client.get(
                path + str(retraining["candidate_version"]),
                headers={"Authorization": f"Bearer {token}"},
            ).json()
        assert candidate["stage"] == "Staging"


def test_the_batch_job_was_killed_resumed_and_wrote_every_row_once(
    demo_run: dict[str, Any],
) -> None:
    batch = demo_run["batch"]
    assert batch["state"] == "succeeded"
    assert batch["killed_and_resumed"] is True
    assert batch["rows"] == 20000
    assert batch["exactly_once"] is True
