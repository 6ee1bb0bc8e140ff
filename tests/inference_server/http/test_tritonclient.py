"""tritonclient.http (Triton's own client, in its own venv and process) against our server.

The client runs under the ``clients_python`` interpreter (``.venv-clients``, ``make install``):
tritonclient's protos clash with ours in one process (MLServer #1831).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from inference_server.http.server import HttpServer

from ..conftest import classifier_reference

SCRIPT = Path(__file__).with_name("triton_http_client.py")

pytestmark = pytest.mark.slow


async def test_tritonclient_http(server: HttpServer, clients_python: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(clients_python),
        str(SCRIPT),
        str(server.port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    seen = json.loads(out)
    x = np.random.default_rng(11).normal(size=(5, 4)).astype(np.float32)
    for check in ("live", "ready", "model_ready", "version_ready"):
        assert seen[check] is True, check
    assert seen["server_metadata"]["name"] == "modelyard"
    assert seen["model_metadata"]["inputs"][0]["shape"] == [-1, 4]
    assert seen["model_config"]["name"] == "clf"

    binary = seen["binary"]
    assert binary["version"] == "1"
    assert binary["id"] == "b1"
    np.testing.assert_allclose(binary["probabilities"], classifier_reference(1, x), rtol=1e-5)
    assert binary["label"] == np.argmax(binary["probabilities"], axis=1).tolist()

    as_json = seen["json"]
    assert as_json["version"] == "2"
    np.testing.assert_allclose(as_json["probabilities"], classifier_reference(2, x), rtol=1e-5)
    assert as_json["label"] == np.argmax(as_json["probabilities"], axis=1).tolist()

    np.testing.assert_allclose(seen["single_row"], classifier_reference(1, x[:1]), rtol=1e-5)
    for compressed in seen["compressed"]:
        assert compressed == seen["single_row"]
    status, message = seen["unknown_model_error"]
    assert status == "404"
    assert "nope" in message
    assert {(m["name"], m["state"]) for m in seen["index"]} == {("clf", "READY")}
    assert seen["ready_after_unload"] is False
    assert seen["ready_after_load"] is True
    assert seen["statistics"]["model_stats"][0]["name"] == "clf"
