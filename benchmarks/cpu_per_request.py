"""Requests per server CPU-second, our server against the bare echo, interleaved rounds.

On a shared machine wall-clock throughput is noise; the CPU time the server spends per
answered request is not (:class:`benchmarks.server_cpu.ServerCpu`, as the harness counts it:
utime + stime from ``/proc`` of its process group, every thread and reaped child).
Every server runs at once, pinned to ``--server-cpus``; each round loads each server in turn
(wrk -t1 for REST V2, ``benchmarks.grpc_load`` for gRPC, pinned to ``--client-cpus``) and
reads the server's CPU time around the measured window (warm-up excluded); REST V2 points also
carry wrk's median latency (``p50_us``). A server from another checkout (``--baseline DIR``,
e.g. a worktree of main) runs beside this one.

Run: ``python -m benchmarks.cpu_per_request --rounds 3 --duration 4 --baseline /work/main``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.contenders import V2_INFER_PATH, Context, builtin_contenders
from benchmarks.measure import _body_files
from benchmarks.modelyard_server import BATCHING_ON, serve_command, write_repository
from benchmarks.processes import (
    ServerProcess,
    await_ready,
    free_port,
    on_fresh_ports,
    pin,
    start_server,
)
from benchmarks.reference import MODEL_NAME
from benchmarks.server_cpu import ServerCpu
from benchmarks.wrk_load import _run_wrk

ROOT = Path(__file__).resolve().parent.parent


def _start_modelyard(
    ctx: Context, name: str, checkout: Path | None, extra_env: dict[str, str] | None = None
) -> ServerProcess:
    return on_fresh_ports(lambda: _start_once(ctx, name, checkout, extra_env))


def _start_once(
    ctx: Context, name: str, checkout: Path | None, extra_env: dict[str, str] | None
) -> ServerProcess:
    root = write_repository(ctx, name, BATCHING_ON)
    http, grpc_port, metrics = free_port(), free_port(), free_port()
    cmd = serve_command(sys.executable, root, ctx.server_cpus, 1, grpc_port, http, metrics)
    env = {"PYTHONPATH": str(checkout)} if checkout is not None else {}
    env.update(extra_env or {})
    server = start_server(name, cmd, ctx.log(name), cwd=checkout, env=env)
    server.ports.update(http=http, grpc=grpc_port)
    await_ready(
        server,
        120,
        grpc_targets=(f"127.0.0.1:{grpc_port}",),
        http_urls=(f"http://127.0.0.1:{http}/v2/models/{MODEL_NAME}/ready",),
    )
    return server


def _load(
    protocol: str, server: ServerProcess, ctx: Context, c: int, args: argparse.Namespace
) -> tuple[int, float, float]:
    """(answered requests, server CPU seconds, client p50 in us or NaN) over one window."""
    # start_server made the server a process-group leader: its workers and helpers count too
    cpu = ServerCpu(server.process.pid)
    client = pin(args.client_cpus)
    seconds, warmup = args.duration, args.warmup
    if protocol == "http":
        url = f"http://127.0.0.1:{server.ports['http']}{V2_INFER_PATH}"
        body = _body_files(ctx)["v2"]
        _run_wrk(client, url, body, c, warmup)
        before = cpu.snapshot()
        raw = _run_wrk(client, url, body, c, seconds)
        after = cpu.snapshot()
        answered = int(raw["requests"] - raw["errors_status"])
        return answered, after.server_s - before.server_s, float(raw["p50_us"])
    target = f"127.0.0.1:{server.ports['grpc']}"
    cmd = [
        *client,
        sys.executable,
        "-m",
        "benchmarks.grpc_load",
        "--target",
        target,
        "--rows-file",
        str(ctx.rows),
        "--concurrency",
        str(c),
        "--duration",
        str(seconds),
        "--warmup",
        str(warmup),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    time.sleep(warmup)  # NOTE: the client warms up this long before its window; not a sync
    before = cpu.snapshot()
    out, _ = proc.communicate(timeout=seconds + warmup + 60)
    after = cpu.snapshot()
    summary = json.loads(out.strip().splitlines()[-1])
    summary = summary[0] if isinstance(summary, list) else summary
    # CPU from the warm-up's end to the client's exit: the window plus the client's shutdown
    # (no load), so this slightly overstates the CPU per request, the same for every server.
    return int(summary["requests"]), after.server_s - before.server_s, float("nan")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--concurrency", default="8,64")
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:KEY=VALUE[,KEY=VALUE]: one more server of this checkout with that environment",
    )
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/cpu-per-request"))
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    return parser.parse_args(argv)


def _start_servers(
    ctx: Context, args: argparse.Namespace, servers: dict[str, ServerProcess]
) -> None:
    """Start the echo server, the baseline, this checkout and the variants into ``servers``
    (so that the caller stops whatever started, even when a later start fails)."""
    echo_name = "echo-asgi" if args.protocol == "http" else "echo-grpc"
    echo = next(c for c in builtin_contenders() if c.name == echo_name)
    assert echo.start is not None
    servers["echo"] = echo.start(ctx)
    if args.baseline is not None:
        servers["baseline"] = _start_modelyard(ctx, "baseline", args.baseline)
    servers["this"] = _start_modelyard(ctx, "this", ROOT)
    for variant in args.variant:
        name, _, assignments = variant.partition(":")
        extra = dict(item.split("=", 1) for item in assignments.split(",") if item)
        servers[name] = _start_modelyard(ctx, name, ROOT, extra)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, run the interleaved rounds (printing each point), stop the servers.

    Returns:
        ``concurrency`` (the levels), ``servers`` (their names, the echo first) and
        ``points``: per concurrency and server, one ``{"throughput", "per_cpu_s",
        "server_cpu_s", "p50_us", "requests"}`` per round (``p50_us`` NaN for gRPC).
    """
    ctx = Context(work_dir=args.work_dir, server_cpus=args.server_cpus)
    ctx.files  # noqa: B018 (build the model before any server starts)
    levels = [int(x) for x in args.concurrency.split(",")]
    servers: dict[str, ServerProcess] = {}
    points: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        _start_servers(ctx, args, servers)
        print(f"load before: {os.getloadavg()}", flush=True)
        for round_no in range(args.rounds):
            names = list(servers)
            if round_no % 2:
                names.reverse()
            for c in levels:
                for name in names:
                    n, cpu, p50 = _load(args.protocol, servers[name], ctx, c, args)
                    rps, per_cpu = n / args.duration, n / cpu if cpu else float("nan")
                    point = {
                        "throughput": rps,
                        "per_cpu_s": per_cpu,
                        "server_cpu_s": cpu,
                        "p50_us": p50,
                    }
                    points.setdefault(str(c), {}).setdefault(name, []).append(
                        point | {"requests": n}
                    )
                    print(
                        f"round {round_no} c={c} {name}: {rps:,.0f} req/s, cpu {cpu:.2f}s, "
                        f"{per_cpu:,.0f} req/CPU-s, {1e6 / per_cpu:.1f} us/req, p50 {p50:.0f} us",
                        flush=True,
                    )
        print(f"load after: {os.getloadavg()}", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    return {"concurrency": levels, "servers": list(servers), "points": points}


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Per concurrency and server: requests per CPU-second, median (rounds), and its ratio to
    the echo server's in the same round, median (rounds).

    >>> point = lambda per_cpu: {"per_cpu_s": per_cpu}
    >>> r = {"concurrency": [8], "servers": ["echo", "this"], "points": {"8": {
    ...     "echo": [point(4000.0), point(5000.0)], "this": [point(1000.0), point(1500.0)]}}}
    >>> print("\\n".join(summary_lines(r)))
    c=8 echo: req/CPU-s median 4,500 (4,000, 5,000); x echo median 1.00 (1.00, 1.00)
    c=8 this: req/CPU-s median 1,250 (1,000, 1,500); x echo median 0.28 (0.25, 0.30)
    """
    lines = []
    for c in result["concurrency"]:
        at = result["points"][str(c)]
        echo_per = [p["per_cpu_s"] for p in at["echo"]]
        for name in result["servers"]:
            per = [p["per_cpu_s"] for p in at[name]]
            ratios = [p / e for p, e in zip(per, echo_per, strict=True)]
            lines.append(
                f"c={c} {name}: req/CPU-s median {statistics.median(per):,.0f} "
                f"({', '.join(f'{p:,.0f}' for p in per)}); x echo median "
                f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
            )
    return lines


def main() -> None:
    """Parse arguments, start the servers, run the rounds, print the table."""
    print("\n".join(summary_lines(measure(parse_args()))))


if __name__ == "__main__":
    main()
