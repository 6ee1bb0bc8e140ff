"""Smoke test of the benchmark harness: the two echo contenders, 1 s points, no MLServer.

It checks only that the harness runs end to end and writes its JSON and its table; the
performance figures themselves belong to ``make bench``, never to the test suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_harness_runs_the_echo_servers_and_writes_json_and_table(tmp_path: Path) -> None:
    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmark results\n\n## Other section\nkept\n")
    cmd = [
        sys.executable,
        "-m",
        "benchmarks",
        "run",
        "--only",
        "echo-grpc,echo-asgi",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--repeats",
        "1",
        "--rounds",
        "2",
        "--search-steps",
        "1",
        "--no-perf-analyzer",
        "--work-dir",
        str(tmp_path / "work"),
        "--results-dir",
        str(tmp_path / "results"),
        "--results-md",
        str(results_md),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]

    [run_file] = (tmp_path / "results").glob("*.json")
    run = json.loads(run_file.read_text())
    assert [r["round"] for r in run["rounds"]] == [1, 2]
    assert all(len(r["load_before"]) == len(r["load_after"]) == 3 for r in run["rounds"])
    assert run["machine"]["before"]["cpus"]
    assert run["machine"]["before"]["cpu"]
    assert "interleaved rounds" in results_md.read_text()
    echo, echo_http = run["contenders"]
    assert (echo["name"], echo_http["name"]) == ("echo-grpc", "echo-asgi")
    assert echo["status"] == echo_http["status"] == "ok", (echo, echo_http)
    closed = [p for p in echo["points"] if p["mode"] == "closed" and p["endpoint"] == "gRPC"]
    assert [p["concurrency"] for p in closed] == [1, 8, 64]
    assert sum(p["median"]["requests"] for p in closed) > 0
    assert echo["open_loop"][0]["tested"], "the open-loop search probed no rate"
    http_closed = [p["concurrency"] for p in echo_http["points"] if p["mode"] == "closed"]
    assert http_closed == [1, 8, 64]
    assert echo_http["open_loop"][0]["tested"][0]["summary"]["tool"] == "python HTTP client"
    # every window of every load generator (gRPC client, wrk, Python HTTP client) carries the
    # server's CPU, and every point the load average around it
    measured = [*closed, *(p for p in echo_http["points"] if p["mode"] == "closed")]
    probes = [t["summary"] for c in (echo, echo_http) for t in c["open_loop"][0]["tested"]]
    for window in [p["median"] for p in measured] + probes:
        assert window["server_cpu_s"] > 0, window
        assert window["requests_per_cpu_s"] > 0, window
        assert 0 < window["server_cpu_share"] <= 1.5, window  # the server is pinned to CPU 0
    assert all(len(p["load_before"]) == len(p["load_after"]) == 3 for p in measured)

    text = results_md.read_text()
    assert "## Serving benchmark" in text
    assert "| echo-grpc | gRPC | grpc.aio client |" in text
    assert "| echo-asgi | REST V2 |" in text
    assert "### Server CPU per point" in text
    assert "## Other section\nkept" in text
