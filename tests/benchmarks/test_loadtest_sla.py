"""The locust load test's SLA verdict is its exit code: 0 when met, non-zero when not.

Runs the real locust gRPC user headless for a few seconds against the harness's echo server
(started on a free port, awaited ready): once with an SLA any answer meets, once with one no
server can meet.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.contenders import Context, builtin_contenders
from benchmarks.processes import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    echo = next(c for c in builtin_contenders() if c.name == "echo-grpc")
    assert echo.start is not None
    server = echo.start(Context(work_dir=tmp_path_factory.mktemp("work")))
    yield server
    server.stop()


def _locust(server: ServerProcess, *sla: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "benchmarks/locust/grpc_user.py",
        "--headless",
        "--only-summary",
        "--host",
        f"127.0.0.1:{server.ports['grpc']}",
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "3s",
        "--target-rps",
        "50",
        *sla,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_loadtest_passes_when_the_sla_is_met(echo_server: ServerProcess) -> None:
    done = _locust(echo_server, "--sla-p99-ms", "60000", "--sla-max-error-rate", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "SLA passed" in done.stderr


@pytest.mark.slow
def test_loadtest_fails_when_the_sla_is_beyond_the_server(echo_server: ServerProcess) -> None:
    done = _locust(echo_server, "--sla-p99-ms", "0.001", "--sla-min-rps", "1000000")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "SLA FAILED" in done.stderr
    assert "p99" in done.stderr
    assert "throughput" in done.stderr
