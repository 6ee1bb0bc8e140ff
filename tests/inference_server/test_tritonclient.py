"""Triton's own clients against ``python -m inference_server`` in a subprocess.

tritonclient's generated protos clash with ours in one process's descriptor pool, so the
client runs in its own virtualenv (``.venv-clients`` in the repository root, a link to the
clients virtualenv) as a subprocess too.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import classifier_reference, serve_subprocess

SCRIPT = Path(__file__).parent / "clients" / "tritonclient_check.py"


@pytest.fixture
def served(repo: Path, publish: Callable[..., Path]) -> Iterator[dict[str, Any]]:
    publish("clf", 1)
    ports = ("--grpc-port", "0", "--http-port", "0", "--metrics-port", "0", "--workers", "1")
    with serve_subprocess(repo, *ports) as proc:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())  # printed once the listeners are up
        yield ready
        proc.terminate()  # SIGTERM: drain and exit 0
        assert proc.wait(timeout=30) == 0


@pytest.mark.slow
def test_tritonclient_grpc_and_http(
    served: dict[str, Any], tmp_path: Path, clients_python: Path
) -> None:
    x = np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32)
    case = {
        "grpc_url": f"127.0.0.1:{served['grpc_port']}",
        "http_url": f"127.0.0.1:{served['http_port']}" if served["http_port"] else None,
        "x": x.tolist(),
        "probabilities": classifier_reference(1, x).tolist(),
    }
    case_file = tmp_path / "case.json"
    case_file.write_text(json.dumps(case))
    done = subprocess.run(
        [str(clients_python), str(SCRIPT), str(case_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
