"""Server CPU per answered request with the prediction log and the drift sketches off and on.

Issue 16's cost, measured so that a shared machine does not blur it: each variant gets a
fresh ``modelyard serve`` (the harness's :func:`~benchmarks.modelyard_server.starter`: 1
worker pinned to ``--server-cpus``, batching with the server's defaults, the reference model)
and a fixed-rate open loop (:func:`~benchmarks.points.run_point`: gRPC ``grpc_load`` at
``--grpc-rate``, REST V2 ``http_load`` at ``--rate``, one row per request, pinned to
``--client-cpus``). The figure is the CPU
time (utime + stime of every thread of the server's process group,
:class:`~benchmarks.server_cpu.ServerCpu`) from just before the load
starts until ``--tail`` seconds after it ended (so the spooler, shipper and sketch threads
catch up), divided by the requests the server answered in that window (its own
``modelyard_inference_requests`` counter). Each server first takes a short unmeasured load
on every endpoint (imports, first database connection, first batch).

Variants are ``CONFIG`` or ``CONFIG@CODE``: the configurations are ``unobserved`` (both
off), ``log`` (prediction log to SQLite), ``sketches`` and ``log+sketches`` (SQLite);
``@CODE`` runs the server from another checkout named with ``--code CODE=PATH`` (e.g. an
export of main: ``git archive main | tar -x -C DIR``), so before and after are measured in
the same rounds. Rounds interleave the variants (reversed every other round); the table
gives, per variant and endpoint, the median over rounds with its spread, and the median of
the per-round difference to ``unobserved`` (same round, same minute).

Run: ``python -m benchmarks.observation_cpu --rounds 5`` (REST V2 at 1,500 req/s and gRPC at
1,000, 8 s each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.contenders import V2_INFER_PATH, Context, Endpoint
from benchmarks.messages import http_infer_body
from benchmarks.modelyard_server import BATCHING_ON, Observation, starter
from benchmarks.open_loop_batching import uptime
from benchmarks.points import Target, run_point
from benchmarks.processes import ServerProcess
from benchmarks.results_files import checked_output
from benchmarks.server_cpu import ServerCpu, usage
from benchmarks.server_metrics import counters

ROOT = Path(__file__).resolve().parent.parent
CONFIGS: dict[str, Observation] = {
    "unobserved": "off",
    "log": "log",
    "sketches": "sketches",
    "log+sketches": "on",
}
ENDPOINTS = {
    "grpc": Endpoint("grpc", "gRPC"),
    "rest": Endpoint("http", "REST V2", path=V2_INFER_PATH),
}
BASELINE = "unobserved"


def measure_endpoint(
    server: ServerProcess, target: Target, args: argparse.Namespace
) -> dict[str, Any]:
    """One fixed-rate run on one endpoint: the server's CPU per answered request."""
    cpu = ServerCpu(server.process.pid)  # NOTE: the server leads its own process group
    before = counters(server)
    start = cpu.snapshot()
    rate = args.grpc_rate if target.endpoint.protocol == "grpc" else args.rate
    summary = run_point(target, rate=rate, duration=args.duration, warmup=args.warmup)[0]
    time.sleep(args.tail)  # NOTE: part of the measured window (background threads), not a sync
    end = cpu.snapshot()
    after = counters(server)
    answered = int(after["requests"] - before["requests"])
    used = usage(start, end, answered)
    return {
        "cpu_us_per_request": round(used["server_cpu_s"] * 1e6 / max(answered, 1), 1),
        "answered": answered,
        **used,
        "errors": summary.get("errors", 0),
        "p50_ms": summary.get("p50_ms"),
        "p99_ms": summary.get("p99_ms"),
        "log_backlog": int(after["buffered"] - after["shipped"] - after["dropped"]),
    }


def measure_variant(
    ctx: Context, variant: str, bodies: dict[str, Path], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """A fresh server for ``variant``; a primer, then one measured run per endpoint."""
    config, _, code = variant.partition("@")
    run_ctx = replace(ctx, modelyard_code=args.code[code]) if code else ctx
    name = f"cpu-{config.replace('+', '-')}" + (f"-{code}" if code else "")
    server = starter(name, BATCHING_ON, 1, args.server_cpus, CONFIGS[config])(run_ctx)
    try:
        targets = {
            key: Target(
                endpoint=endpoint,
                address=f"127.0.0.1:{server.ports[endpoint.protocol]}",
                client_cpus=args.client_cpus,
                rows_file=ctx.rows,
                body_file=bodies["v2"],
            )
            for key, endpoint in ENDPOINTS.items()
            if key in args.endpoints
        }
        for target in targets.values():
            run_point(target, rate=args.grpc_rate, duration=args.prime, warmup=0.2)
        return {key: measure_endpoint(server, t, args) for key, t in targets.items()}
    finally:
        server.stop()


def spread(values: Sequence[float], sign: str = "") -> str:
    """``median (min-max)`` with one decimal (``sign="+"``: signed).

    >>> spread([3.0, 1.0, 2.0])
    '2.0 (1.0-3.0)'
    >>> spread([5.0, -1.0, 2.5], "+")
    '+2.5 (-1.0 to +5.0)'
    """
    med, low, high = statistics.median(values), min(values), max(values)
    if sign:
        return f"{med:+.1f} ({low:+.1f} to {high:+.1f})"
    return f"{med:.1f} ({low:.1f}-{high:.1f})"


def table(rounds: list[dict[str, dict[str, dict[str, Any]]]]) -> str:
    """Markdown: per endpoint and variant, CPU µs per request (median, spread over rounds)
    and the per-round difference to the (first) ``unobserved`` variant; errors are shed or
    failed requests; "others on its core" is the median share of the server's core that other
    processes used meanwhile (a starved point shows there).

    >>> one = lambda us: {"rest": {"cpu_us_per_request": us, "errors": 0}}
    >>> print(table([{"unobserved": one(60.0), "log": one(80.0)},
    ...              {"unobserved": one(64.0), "log": one(81.0)}]))
    | endpoint | variant | CPU µs/request | over unobserved | errors | others on its core |
    |---|---|---:|---:|---:|---:|
    | REST V2 | unobserved | 62.0 (60.0-64.0) | - | 0 | - |
    | REST V2 | log | 80.5 (80.0-81.0) | +18.5 (+17.0 to +20.0) | 0 | - |
    """
    variants = list(rounds[0])
    base_name = next((v for v in variants if v.partition("@")[0] == BASELINE), None)
    lines = [
        f"| endpoint | variant | CPU µs/request | over {BASELINE} | errors | others on its core |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, endpoint in ENDPOINTS.items():
        if key not in rounds[0][variants[0]]:
            continue
        for variant in variants:
            runs = [r[variant][key] for r in rounds]
            cpu = [run["cpu_us_per_request"] for run in runs]
            extra = "-"
            if base_name is not None and variant != base_name:
                base = [r[base_name][key]["cpu_us_per_request"] for r in rounds]
                extra = spread([a - b for a, b in zip(cpu, base, strict=True)], "+")
            errors = sum(int(run["errors"]) for run in runs)
            others = [run["others_cpu_share"] for run in runs if run.get("others_cpu_share")]
            share = f"{statistics.median(others):.2f}" if others else "-"
            lines.append(
                f"| {endpoint.label} | {variant} | {spread(cpu)} | {extra} | {errors} | {share} |"
            )
    return "\n".join(lines)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every round over every variant (order reversed every other round)."""
    ctx = Context(args.work_dir, args.server_cpus)
    folder = args.work_dir / "observation_cpu"
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {"v2": folder / "v2.json"}
    bodies["v2"].write_bytes(http_infer_body(np.load(ctx.rows)[:1]))
    ctx.files  # noqa: B018 - builds (or reuses) the reference model before the rounds
    load_before = uptime()
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = []
    for number in range(args.rounds):
        order = args.variants if number % 2 == 0 else args.variants[::-1]
        results = {v: measure_variant(ctx, v, bodies, args) for v in order}
        rounds.append({v: results[v] for v in args.variants})
        line = ", ".join(
            f"{v} {k} {results[v][k]['cpu_us_per_request']:.1f}"
            for v in args.variants
            for k in results[v]
        )
        print(f"round {number + 1} (µs/request): {line}", file=sys.stderr, flush=True)
    return {
        "command": " ".join(sys.argv),
        "uptime_before": load_before,
        "uptime_after": uptime(),
        "rate": args.rate,
        "grpc_rate": args.grpc_rate,
        "duration_s": args.duration,
        "tail_s": args.tail,
        "rounds": rounds,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    >>> args = parse_args(["--variants", "log,log@main", "--code", "main=/tmp/m"])
    >>> args.variants, args.code["main"], args.endpoints
    (['log', 'log@main'], PosixPath('/tmp/m'), ['grpc', 'rest'])
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1500.0, help="REST V2 requests/s")
    parser.add_argument(
        "--grpc-rate",
        type=float,
        default=1000.0,
        help="gRPC requests/s (lower: a gRPC request costs ~4x a REST one on the server)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="load-generator warm-up")
    parser.add_argument("--tail", type=float, default=1.5, help="seconds measured after a run")
    parser.add_argument("--prime", type=float, default=1.0, help="unmeasured load per server")
    parser.add_argument("--variants", default=",".join(CONFIGS), help="CONFIG[@CODE],...")
    parser.add_argument("--endpoints", default="grpc,rest", help="grpc, rest")
    parser.add_argument("--code", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / ".work")
    parser.add_argument(
        "--out",
        type=Path,
        help="also write the raw results (JSON) here; not in benchmarks/results/, which keeps "
        "no file of this benchmark (its figures are in RESULTS.md)",
    )
    parser.add_argument("--table-from", type=Path, help="only print the table of saved results")
    args = parser.parse_args(argv)
    args.variants = args.variants.split(",")
    args.endpoints = args.endpoints.split(",")
    codes = dict(spec.partition("=")[::2] for spec in args.code)
    args.code = {name: Path(path).resolve() for name, path in codes.items()}
    for variant in args.variants:
        config, _, code = variant.partition("@")
        if config not in CONFIGS or (code and code not in args.code):
            parser.error(f"unknown variant {variant!r} (configs {list(CONFIGS)}, --code)")
    if args.out is not None:
        args.out = checked_output(args.out, None)
    return args


def main() -> None:
    """Measure, print the load and the table, optionally save the raw results."""
    args = parse_args()
    if args.table_from:
        print(table(json.loads(args.table_from.read_text())["rounds"]))
        return
    run = measure(args)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(run, indent=1))
    print(f"before: {run['uptime_before']}\nafter:  {run['uptime_after']}")
    print(table(run["rounds"]))


if __name__ == "__main__":
    main()
