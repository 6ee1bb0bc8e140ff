"""``modelyard batch`` against a real control plane: submit with a progress bar, status,
and a refused resume exiting 2 with the reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from control_plane.batch.shards import read_results
from control_plane.server import ControlPlaneServer
from modelyard.cli import main
from tests.control_plane.batch.helpers import write_inputs
from tests.control_plane.batch.test_rest import _register, server  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


async def _invoke(args: list[str]) -> tuple[int, str, str]:
    runner = CliRunner()
    result = await asyncio.to_thread(runner.invoke, main, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_submit_follows_to_the_end_then_status_and_refused_resume(
    server: ControlPlaneServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    await _register(server)
    write_inputs(tmp_path / "data" / "in", [90])
    token_file = Path(server.settings.control_plane.admin_token_file)
    token = (await asyncio.to_thread(token_file.read_text)).strip()
    common = ["--url", server.url, "--token", token]
    code, out, err = await _invoke(
        ["batch", "submit", *common, "--model", "tiny", "--version", "1", "--input", "in",
         "--output", "out", "--chunk-size", "25", "--id-column", "id", "--format", "csv"]
    )  # fmt: skip
    assert code == 0, err
    job = json.loads(out)
    assert job["progress"]["state"] == "succeeded"
    assert "90/90" in err  # the progress bar's last state
    assert sorted(read_results(tmp_path / "data" / "out").column("id").to_pylist()) == list(
        range(90)
    )
    code, out, _ = await _invoke(["batch", "status", *common, job["id"]])
    assert (code, json.loads(out)["progress"]["rows_done"]) == (0, 90)
    code, _, err = await _invoke(["batch", "resume", *common, job["id"]])
    assert code == 2
    assert "only a failed, cancelled or interrupted job can resume" in err
