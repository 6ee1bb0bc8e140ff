"""Measure points: one load-generator run per point, each in a subprocess pinned to a CPU.

A *point* is one (endpoint, mode, concurrency or rate, rows) combination; ``run_point``
measures it in several windows after one warm-up, and ``keep_median`` keeps the median window.
``search_rate`` runs the open-loop search: a bisection over arrival rates, bounded by the
closed-loop throughput, for the highest rate that passes the SLA (p99 under the threshold, no
errors, at least 97% of the offered rate completed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.contenders import Endpoint
from benchmarks.processes import flags, pin
from benchmarks.server_cpu import ServerCpu
from benchmarks.stats import Summary, median_repeat
from benchmarks.wrk_load import wrk_path, wrk_point

RATE_PASS_FRACTION = 0.97


@dataclass(frozen=True)
class Target:
    """Where and how to send load for one endpoint of a running contender."""

    endpoint: Endpoint
    address: str  # host:port
    client_cpus: str
    rows_file: Path
    body_file: Path | None
    python: str = sys.executable
    server_group: int = 0
    """The server's process group, whose CPU each window records (0: not recorded)."""

    @property
    def url(self) -> str:
        """The HTTP URL of the endpoint."""
        return f"http://{self.address}{self.endpoint.path}"


def run_json(cmd: list[str], timeout: float) -> list[Summary]:
    """Run a load generator; parse the JSON list of window summaries it prints last."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])}... failed: {done.stderr[-1500:]}")
    result: list[Summary] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _python_client(target: Target, args: list[str], tool: str, timeout: float) -> list[Summary]:
    module = (
        "benchmarks.grpc_load" if target.endpoint.protocol == "grpc" else "benchmarks.http_load"
    )
    cmd = [*pin(target.client_cpus), target.python, "-m", module, *args]
    return [summary | {"tool": tool} for summary in run_json(cmd, timeout)]


def run_point(
    target: Target,
    *,
    concurrency: int = 1,
    rate: float = 0.0,
    rows: int = 1,
    duration: float,
    warmup: float,
    repeats: int = 1,
) -> list[Summary]:
    """One load-generator run against ``target``: a warm-up, then ``repeats`` measured
    windows; one summary (with a ``tool`` key, and the server's CPU when ``target`` names its
    process group) per window."""
    timing = flags(duration=duration, warmup=warmup, repeats=repeats, rate=rate)
    if target.server_group:
        timing += flags(server_group=target.server_group)
    timeout = warmup + duration * repeats + 120
    if target.endpoint.protocol == "grpc":
        args = [
            *flags(
                target=target.address,
                rows_file=target.rows_file,
                rows=rows,
                concurrency=concurrency,
            ),
            *timing,
        ]
        if target.endpoint.stream:
            return _python_client(target, [*args, "--stream"], "grpc.aio stream", timeout)
        return _python_client(target, args, "grpc.aio client", timeout)
    assert target.body_file is not None
    if not rate and wrk_path() is not None:
        return wrk_point(
            pin(target.client_cpus),
            target.url,
            target.body_file,
            concurrency,
            duration,
            warmup,
            repeats,
            ServerCpu(target.server_group) if target.server_group else None,
        )
    connections = concurrency if not rate else 64
    args = [*flags(url=target.url, body_file=target.body_file, connections=connections), *timing]
    return _python_client(target, args, "python HTTP client", timeout)


def keep_median(summaries: list[Summary]) -> dict[str, Any]:
    """The median window of a point and every window's throughput."""
    return {
        "median": median_repeat(summaries),
        "repeat_throughputs": [s["throughput"] for s in summaries],
    }


def passes_sla(summary: Summary, rate: float, sla_p99_ms: float) -> bool:
    """Whether an open-loop point met the SLA at the offered ``rate``.

    >>> passes_sla({"errors": 0, "p99_ms": 4.0, "throughput": 990.0}, 1000.0, 10.0)
    True
    >>> passes_sla({"errors": 0, "p99_ms": 12.0, "throughput": 1000.0}, 1000.0, 10.0)
    False
    """
    p99 = summary.get("p99_ms")
    return (
        summary.get("errors", 1) == 0
        and p99 is not None
        and p99 < sla_p99_ms
        and summary.get("throughput", 0.0) >= RATE_PASS_FRACTION * rate
    )


def search_rate(
    run_at: Callable[[float], Summary], ceiling: float, steps: int, sla_p99_ms: float
) -> dict[str, Any]:
    """Bisect arrival rates in (0, 1.05 * ceiling] for the highest rate passing the SLA.

    The first probe is 0.8 x ceiling (servers usually sustain most of their closed-loop
    throughput); each later probe halves the interval between the best pass and the lowest
    failure.

    >>> fake = lambda r: {"errors": 0, "p99_ms": 5.0 if r <= 700 else 50.0, "throughput": r}
    >>> result = search_rate(fake, ceiling=1000.0, steps=5, sla_p99_ms=10.0)
    >>> result["sustained_rate"], len(result["tested"])
    (700, 5)
    """
    low, high = 0.0, 1.05 * ceiling
    rate = 0.8 * ceiling
    tested: list[dict[str, Any]] = []
    for _ in range(steps):
        rate = round(rate)
        summary = run_at(rate)
        ok = passes_sla(summary, rate, sla_p99_ms)
        tested.append({"rate": rate, "pass": ok, "summary": summary})
        if ok:
            low = rate
        else:
            high = rate
        rate = (low + high) / 2
    best = max((t for t in tested if t["pass"]), key=lambda t: t["rate"], default=None)
    return {
        "sla_p99_ms": sla_p99_ms,
        "sustained_rate": best["rate"] if best else None,
        "sustained_p99_ms": best["summary"]["p99_ms"] if best else None,
        "lowest_failed_rate": min((t["rate"] for t in tested if not t["pass"]), default=None),
        "tested": tested,
    }
