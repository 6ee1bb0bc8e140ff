"""``modelyard ab-tests ...`` against a running control plane, and the REST error answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import msgspec
from click.testing import CliRunner

from control_plane.server import ControlPlaneServer
from modelyard.cli import main
from modelyard.enums import ModelStage
from modelyard.routing import assign_arm
from tests.control_plane.abtesting.helpers import definition
from tests.control_plane.registry.helpers import (
    APPROVER,
    DEVELOPER,
    admin_token_of,
    approved_version,
    with_lineage_features,
)


async def _staged(plane: ControlPlaneServer) -> tuple[int, int]:
    services = plane.services
    assert services is not None
    await with_lineage_features(plane)
    registry = services.registry
    v1 = await approved_version(registry, "churn")
    v2 = await approved_version(registry, "churn")
    await registry.stages.transition("churn", v1, ModelStage.STAGING, DEVELOPER)
    await registry.stages.transition("churn", v1, ModelStage.PRODUCTION, APPROVER)
    await registry.stages.transition("churn", v2, ModelStage.STAGING, DEVELOPER)
    return v1, v2


async def test_ab_tests_commands_against_a_running_control_plane(
    control_plane: ControlPlaneServer, tmp_path: Path
) -> None:
    v1, v2 = await _staged(control_plane)
    spec = tmp_path / "test.json"
    spec.write_bytes(msgspec.json.encode(definition("churn", v1, v2)))
    runner = CliRunner(env={"MODELYARD_CONFIG_DIR": str(tmp_path / "no-config")})
    auth = ["--url", control_plane.url, "--token", admin_token_of(control_plane)]

    async def run(*args: str) -> object:
        result = await asyncio.to_thread(runner.invoke, main, ["ab-tests", *args, *auth])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    created = await run("create", str(spec))
    test_id = created["test"]["id"]  # type: ignore[index]
    assert created["servers"] == []  # type: ignore[index]
    listed = await run("list", "--model", "churn")
    assert [t["id"] for t in listed] == [test_id]  # type: ignore[attr-defined]
    assigned = await run("assign", test_id, "user-7")
    assert assigned["version"] == (v1, v2)[assign_arm("user-7", [0.5, 0.5])]  # type: ignore[index]
    split = await run("split", test_id, f"{v1}=0.9", f"{v2}=0.1", "--reason", "ramp down")
    assert [v["weight"] for v in split["test"]["definition"]["variants"]] == [0.9, 0.1]  # type: ignore[index]
    plan = await run("plan", "--baseline", "0.1", "--mde", "0.02", "--daily-traffic", "1000")
    assert plan["n_per_variant"] == 3841  # type: ignore[index]
    concluded = await run("conclude", test_id, str(v1))
    assert concluded["test"]["status"] == "concluded"  # type: ignore[index]
    denied = await asyncio.to_thread(
        runner.invoke, main, ["ab-tests", "stop", test_id, "--url", control_plane.url]
    )
    assert denied.exit_code == 2
    assert "API token" in denied.stderr


async def test_rest_errors_name_the_problem(
    control_plane: ControlPlaneServer, tmp_path: Path
) -> None:
    v1, v2 = await _staged(control_plane)
    admin = {"Authorization": f"Bearer {admin_token_of(control_plane)}"}
    good = msgspec.to_builtins(definition("churn", v1, v2))
    async with httpx.AsyncClient(base_url=control_plane.url, headers=admin) as client:
        unknown_field = await client.post("/v1/ab-tests", json=good | {"colour": "red"})
        assert unknown_field.status_code == 422
        assert "colour" in unknown_field.text
        bad_weights = good | {"variants": [v | {"weight": 0.9} for v in good["variants"]]}
        answer = await client.post("/v1/ab-tests", json=bad_weights)
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_argument")
        assert "sum to 1" in answer.json()["error"]
        missing = await client.post(
            "/v1/ab-tests", json=msgspec.to_builtins(definition("churn", v1, 99))
        )
        assert missing.status_code == 404
        created = await client.post("/v1/ab-tests", json=good)
        assert created.status_code == 201
        again = await client.post("/v1/ab-tests", json=good)
        assert again.status_code == 409
        assert (await client.get("/v1/ab-tests/nope")).status_code == 404
        plan = await client.post(
            "/v1/ab-tests/plan", json={"baseline": 1.5, "minimum_detectable_effect": 0.1}
        )
        assert plan.status_code == 422
        assert "between 0 and 1" in plan.json()["error"]
