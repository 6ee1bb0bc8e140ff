"""``modelyard monitoring ...`` against a running control plane (``--url``), both backends."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from control_plane.server import ControlPlaneServer
from modelyard.cli import main
from tests.control_plane.conftest import admin_token
from tests.control_plane.monitoring.helpers import drift_candidate
from tests.control_plane.registry.helpers import with_lineage_features
from tests.control_plane.registry.test_cli import _files


async def test_monitoring_commands_against_a_running_control_plane(
    monitored_plane: ControlPlaneServer, tmp_path: Path
) -> None:
    assert monitored_plane.services is not None
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": str(tmp_path / "no-config")})
    url = ["--url", monitored_plane.url]
    admin = ["--token", admin_token(monitored_plane)]

    async def invoke_root(*args: str) -> Any:
        result = await asyncio.to_thread(runner.invoke, main, list(args))
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    async def invoke(*args: str) -> Any:
        # The server runs on this event loop: the (blocking) command runs in a thread.
        result = await asyncio.to_thread(runner.invoke, main, ["monitoring", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if result.stdout.startswith(("[", "{")) else None

    add = ["add-channel", "ops", "--kind", "email", "--target", "ops@example.com"]
    refused = await asyncio.to_thread(runner.invoke, main, ["monitoring", *add, *url])
    assert refused.exit_code == 2
    assert "API token" in refused.stderr
    channel = await invoke(*add, "--type", "drift", "--min-severity", "warning", *url, *admin)
    assert (channel["name"], channel["types"], channel["min_severity"]) == (
        "ops",
        ["drift"],
        "warning",
    )
    alert, _ = await monitored_plane.services.monitoring.alerts.raise_alert(drift_candidate())
    listed = await invoke("alerts", "--model", "churn", "--state", "open", *url)
    assert [a["id"] for a in listed] == [alert.id]
    shown = await invoke("alert", str(alert.id), *url)
    assert shown["alert"]["details"][1]["feature"] == "plan"
    assert [d["channel"] for d in shown["deliveries"]] == ["ops"]
    acked = await invoke("ack", str(alert.id), *url, *admin)
    assert acked["state"] == "acknowledged"
    resolved = await invoke("resolve", str(alert.id), *url, *admin)
    assert resolved["state"] == "resolved"
    assert await invoke("dead-letters", *url) is not None
    jobs = {job["name"] for job in await invoke("jobs", *url)}
    assert "monitoring.drift-checks" in jobs
    sample_csv = tmp_path / "sample.csv"
    sample_csv.write_text(
        "tenure,plan,p\n" + "".join(f"{i},{'ab'[i % 2]},0.{i % 10}\n" for i in range(60))
    )
    unknown = await asyncio.to_thread(
        runner.invoke,
        main,
        ["monitoring", "reference", "churn", "7", "--sample", str(sample_csv), *url, *admin],
    )
    assert unknown.exit_code == 2
    assert "not found" in unknown.stderr
    no_servers = await asyncio.to_thread(
        runner.invoke, main, ["monitoring", "check", "churn", "1", *url, *admin]
    )
    assert no_servers.exit_code == 2
    assert "reference profile" in no_servers.stderr
    assert await invoke("reports", "--model", "churn", *url) == []
    await with_lineage_features(monitored_plane)
    files = _files(tmp_path)
    registered = await invoke_root(
        "models",
        "register",
        "churn",
        "--onnx",
        files["onnx"],
        "--card",
        files["card"],
        "--lineage",
        files["lineage"],
        "--reference-sample",
        str(sample_csv),
        "--score-column",
        "p",
        *url,
        *admin,
    )
    at_registration = await monitored_plane.services.monitoring.drift.reference(
        "churn", registered["version"]
    )
    assert at_registration.rows == 60
    assert set(at_registration.features) == {"tenure", "plan"}
    model = await monitored_plane.services.registry.get("churn", registered["version"])
    stored = await asyncio.to_thread(
        runner.invoke,
        main,
        [
            "monitoring",
            "reference",
            "churn",
            str(model.version),
            "--sample",
            str(sample_csv),
            "--score-column",
            "p",
            *url,
            *admin,
        ],
    )
    assert stored.exit_code == 0, stored.output
    assert "60 rows, 2 features" in stored.stdout
    profile = await monitored_plane.services.monitoring.drift.reference("churn", model.version)
    assert set(profile.features) == {"tenure", "plan"}
    assert profile.score is not None
    await invoke("delete-channel", "ops", *url, *admin)
    assert await invoke("channels", *url) == []
