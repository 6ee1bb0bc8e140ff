"""Requests per server CPU-second, our server against the bare echo, interleaved rounds.

On a shared machine wall-clock throughput is noise; the CPU time the server's process tree
spends (utime + stime from ``/proc``, every thread and child) per answered request is not.
Every server runs at once, pinned to ``--server-cpus``; each round loads each server in turn
(wrk -t1 for REST V2, ``benchmarks.grpc_load`` for gRPC, pinned to ``--client-cpus``) and
reads the server's CPU time around the measured window (warm-up excluded). A server from
another checkout (``--baseline DIR``, e.g. a worktree of main) runs beside this one.

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

import psutil

from benchmarks.contenders import V2_INFER_PATH, Context, builtin_contenders
from benchmarks.measure import _body_files
from benchmarks.modelyard_server import BATCHING_ON, serve_command, write_repository
from benchmarks.processes import ServerProcess, await_ready, free_port, pin, start_server
from benchmarks.reference import MODEL_NAME
from benchmarks.wrk_load import _run_wrk


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, in seconds."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _start_modelyard(
    ctx: Context, name: str, checkout: Path | None, extra_env: dict[str, str] | None = None
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
    protocol: str, server: ServerProcess, ctx: Context, c: int, seconds: float, warmup: float
) -> tuple[int, float]:
    """(answered requests, server CPU seconds) over one measured window."""
    pid = server.process.pid
    if protocol == "http":
        url = f"http://127.0.0.1:{server.ports['http']}{V2_INFER_PATH}"
        body = _body_files(ctx)["v2"]
        _run_wrk(pin(ctx_client(ctx)), url, body, c, warmup)
        before = _cpu_seconds(pid)
        raw = _run_wrk(pin(ctx_client(ctx)), url, body, c, seconds)
        after = _cpu_seconds(pid)
        return int(raw["requests"] - raw["errors_status"]), after - before
    target = f"127.0.0.1:{server.ports['grpc']}"
    cmd = [
        *pin(ctx_client(ctx)),
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
    time.sleep(warmup)
    before = _cpu_seconds(pid)
    t0 = time.monotonic()
    out, _ = proc.communicate(timeout=seconds + warmup + 60)
    after = _cpu_seconds(pid)
    elapsed = time.monotonic() - t0
    summary = json.loads(out.strip().splitlines()[-1])
    summary = summary[0] if isinstance(summary, list) else summary
    # CPU from the warm-up's end to the client's exit: the window plus the client's shutdown
    # (no load), so this slightly overstates the CPU per request, the same for every server.
    del elapsed
    return int(summary["requests"]), after - before


_CLIENT = {"cpus": "1"}


def ctx_client(ctx: Context) -> str:
    """The load generator's CPUs."""
    return _CLIENT["cpus"]


def main() -> None:
    """Parse arguments, start the servers, run the rounds, print the table."""
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
    args = parser.parse_args()
    _CLIENT["cpus"] = args.client_cpus
    ctx = Context(work_dir=args.work_dir, server_cpus=args.server_cpus)
    ctx.files  # noqa: B018 (build the model before any server starts)
    echo_name = "echo-asgi" if args.protocol == "http" else "echo-grpc"
    echo = next(c for c in builtin_contenders() if c.name == echo_name)
    assert echo.start is not None
    servers: dict[str, ServerProcess] = {}
    try:
        servers["echo"] = echo.start(ctx)
        if args.baseline is not None:
            servers["baseline"] = _start_modelyard(ctx, "baseline", args.baseline)
        servers["this"] = _start_modelyard(ctx, "this", Path.cwd())
        for variant in args.variant:
            name, _, assignments = variant.partition(":")
            extra = dict(item.split("=", 1) for item in assignments.split(",") if item)
            servers[name] = _start_modelyard(ctx, name, Path.cwd(), extra)
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        print(f"load before: {os.getloadavg()}", flush=True)
        for round_no in range(args.rounds):
            names = list(servers)
            if round_no % 2:
                names.reverse()
            for c in (int(x) for x in args.concurrency.split(",")):
                for name in names:
                    n, cpu = _load(args.protocol, servers[name], ctx, c, args.duration, args.warmup)
                    rps, per_cpu = n / args.duration, n / cpu if cpu else float("nan")
                    results.setdefault((name, c), []).append((rps, per_cpu))
                    print(
                        f"round {round_no} c={c} {name}: {rps:,.0f} req/s, cpu {cpu:.2f}s, "
                        f"{per_cpu:,.0f} req/CPU-s, {1e6 / per_cpu:.1f} us/req",
                        flush=True,
                    )
        print(f"load after: {os.getloadavg()}", flush=True)
        for c in (int(x) for x in args.concurrency.split(",")):
            echo_per = [p for _, p in results[("echo", c)]]
            for name in servers:
                per = [p for _, p in results[(name, c)]]
                ratios = [p / e for p, e in zip(per, echo_per, strict=True)]
                print(
                    f"c={c} {name}: req/CPU-s median {statistics.median(per):,.0f} "
                    f"({', '.join(f'{p:,.0f}' for p in per)}); x echo median "
                    f"{statistics.median(ratios):.2f} ({', '.join(f'{r:.2f}' for r in ratios)})"
                )
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    main()
