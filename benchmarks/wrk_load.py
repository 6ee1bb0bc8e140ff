"""Closed-loop HTTP points with wrk (the Debian package), driven through ``wrk/post.lua``.

wrk runs one thread (the load generator has one core) with c connections; a warm-up run is
discarded, then one run of the point's duration is measured. The Lua script prints a JSON line
with the request count, error counts and latency percentiles, which becomes the same summary
shape as the Python load generators produce. Given the server's :class:`ServerCpu`, the
counters are read just before and after each measured wrk run (one window per wrk process), so
the window's summary carries the server's CPU too (connection set-up and wrk's start included:
milliseconds against seconds).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from benchmarks.server_cpu import ServerCpu, usage
from benchmarks.stats import Summary

LUA_SCRIPT = Path(__file__).parent / "wrk" / "post.lua"
INSTALL_HINT = "wrk is missing: install it with `apt-get update && apt-get install -y wrk`"


def wrk_path() -> str | None:
    """Return the wrk executable, or None when it is not installed."""
    return shutil.which("wrk")


def _run_wrk(
    cmd_prefix: list[str], url: str, body: Path, connections: int, seconds: float
) -> dict[str, float]:
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError(INSTALL_HINT)
    cmd = [
        *cmd_prefix,
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(body),
        "application/json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, float] = json.loads(line.removeprefix("WRK_JSON "))
            return result
    raise RuntimeError(f"wrk printed no summary: {out.stdout[-500:]} {out.stderr[-500:]}")


def _summary(raw: dict[str, float], connections: int) -> Summary:
    window = raw["duration_us"] / 1e6
    errors = int(sum(raw[k] for k in raw if k.startswith("errors_")))
    ok = int(raw["requests"] - raw["errors_status"])
    return {
        "requests": ok,
        "errors": errors,
        "window_s": round(window, 3),
        "throughput": round(ok / window, 1),
        "rows_per_s": round(ok / window, 1),
        "p50_ms": raw["p50_us"] / 1e3,
        "p90_ms": raw["p90_us"] / 1e3,
        "p99_ms": raw["p99_us"] / 1e3,
        "max_ms": raw["max_us"] / 1e3,
        "mean_ms": round(raw["mean_us"] / 1e3, 3),
        "concurrency": connections,
        "rate": 0.0,
        "tool": "wrk",
    }


def wrk_point(
    cmd_prefix: list[str],
    url: str,
    body: Path,
    connections: int,
    duration: float,
    warmup: float,
    repeats: int = 1,
    cpu: ServerCpu | None = None,
) -> list[Summary]:
    """Run a warm-up, then ``repeats`` measured wrk runs; one summary per run.

    Args:
        cmd_prefix: prefix for pinning, e.g. ``["taskset", "-c", "1"]``.
        url: the endpoint to POST to.
        body: file holding the request body.
        connections: wrk connections (the closed-loop concurrency).
        duration: measured seconds per run (wrk counts whole seconds).
        warmup: warm-up seconds (skipped when 0; at least 1 s otherwise).
        repeats: measured runs.
        cpu: the server's counters, read around each measured run (None: not recorded).
    """
    if warmup > 0:
        _run_wrk(cmd_prefix, url, body, connections, warmup)
    summaries = []
    for _ in range(repeats):
        before = cpu.snapshot() if cpu else None
        summary = _summary(_run_wrk(cmd_prefix, url, body, connections, duration), connections)
        if cpu and before:
            summary |= usage(before, cpu.snapshot(), int(summary["requests"]))
        summaries.append(summary)
    return summaries
