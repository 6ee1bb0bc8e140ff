"""Triton's perf_analyzer (from the tritonclient wheel) drives ``modelyard serve``.

perf_analyzer needs Triton's ModelConfig and ModelStatistics RPCs (with equal compute counts)
and a CUDA runtime library on the loader path even without a GPU; the benchmark harness
installs both into ``benchmarks/.work/triton-venv``, and so does ``make install``. The binary
also needs Debian's ``libb64-0d``; without the venv or the library the test is skipped with
the reason.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.perf_analyzer import LIBB64, cuda_lib_dir, perf_analyzer_venv

from .conftest import ROOT, serve_subprocess

VENV = perf_analyzer_venv(ROOT / "benchmarks" / ".work")
PERF_ANALYZER = VENV / "bin" / "perf_analyzer"


@pytest.mark.slow
@pytest.mark.skipif(not PERF_ANALYZER.exists(), reason="no perf_analyzer venv (make install)")
@pytest.mark.skipif(
    not LIBB64.exists(), reason="perf_analyzer needs Debian's libb64-0d (apt-get install libb64-0d)"
)
def test_perf_analyzer_measures_the_server(repo: Path, publish: Callable[..., Path]) -> None:
    publish("clf", 1)
    ports = ("--grpc-port", "0", "--http-port", "-1", "--metrics-port", "-1", "--workers", "1")
    with serve_subprocess(repo, *ports) as server:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["grpc_port"]
        done = subprocess.run(
            [
                str(PERF_ANALYZER),
                "-m",
                "clf",
                "-u",
                f"127.0.0.1:{port}",
                "-i",
                "grpc",
                "--concurrency-range",
                "4",
                "-p",
                "500",
                "-s",
                "100",
                "--shape",
                "input:1,4",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={"LD_LIBRARY_PATH": str(cuda_lib_dir(VENV)), "PATH": "/usr/bin:/bin"},
        )
        server.terminate()
        assert server.wait(timeout=30) == 0
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Concurrency: 4, throughput:" in done.stdout, done.stdout
