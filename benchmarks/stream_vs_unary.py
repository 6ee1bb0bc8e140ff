"""Streaming vs unary gRPC on the same server, interleaved rounds (issue 21).

Each server is started once, pinned to CPU 0: modelyard with the server's defaults (batching
on), optionally modelyard with batching off, and the bare grpc.aio echo
(:mod:`benchmarks.echo_grpc`). Each round measures, for every server in turn, unary ModelInfer
at concurrency c (default 64) and one ModelStreamInfer stream with c requests in flight, with
the load generator (:mod:`benchmarks.grpc_load`) pinned to CPU 1. The figure that counts is the
ratio stream / unary *within a round* (the machine is shared; absolute rates drift between
rounds); the report gives each round's ratio, their median and spread, and the load average
before and after each round.

Per core: besides requests per wall-clock second, each point records the CPU seconds the
server's processes used (all threads, ``/proc``) and reports requests per CPU-second. On a
machine where other work takes CPU 0 from the server, that is the fairer figure: a server
descheduled half the time halves its req/s but not its req per CPU-second. For it, points run
without warm-up (``--warmup 0``, the default) so that every request the CPU paid for is
counted.

Run: ``python -m benchmarks.stream_vs_unary --rounds 3 --duration 3``
(``--batching-off`` adds modelyard with batching off; ``--baseline DIR`` adds modelyard with
the defaults run from another checkout, e.g. a worktree of main, to compare code in the same
rounds). The raw result goes to ``--json FILE``, by default
``benchmarks/results/stream-vs-unary-latest.json``, replacing the previous run's (one file per
benchmark kind: :mod:`benchmarks.results_files`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.contenders import Contender, Context, Endpoint, builtin_contenders
from benchmarks.modelyard_server import BATCHING_ON, modelyard_contenders, starter
from benchmarks.points import Target, run_point
from benchmarks.processes import ServerProcess
from benchmarks.results_files import checked_output, latest
from benchmarks.server_cpu import cpu_seconds_of_group
from benchmarks.stats import median_repeat

UNARY = Endpoint("grpc", "gRPC")
STREAM = Endpoint("grpc", "gRPC stream", stream=True)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _contenders(batching_off: bool) -> list[Contender]:
    wanted = ["modelyard-batching", "echo-grpc"] + (["modelyard"] if batching_off else [])
    known = {c.name: c for c in [*modelyard_contenders(), *builtin_contenders()]}
    return [known[name] for name in wanted]


def _alias(python: str) -> str:
    """The same interpreter under another path (``python`` -> ``python3``)."""
    path = Path(python)
    alias = path.with_name("python3" if path.name != "python3" else "python")
    if not alias.exists():
        raise SystemExit(f"--baseline needs {alias} beside {path}")
    return str(alias)


@contextlib.contextmanager
def _pythonpath(path: Path | None) -> Iterator[None]:
    """Start servers with ``path`` first on PYTHONPATH (their code from that checkout)."""
    saved = os.environ.get("PYTHONPATH")
    if path is not None:
        os.environ["PYTHONPATH"] = str(path.resolve())
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _point(
    ctx: Context, server: ServerProcess, endpoint: Endpoint, args: argparse.Namespace
) -> dict[str, Any]:
    target = Target(
        endpoint=endpoint,
        address=f"127.0.0.1:{server.ports['grpc']}",
        client_cpus=args.client_cpus,
        rows_file=ctx.rows,
        body_file=None,
    )
    group = server.process.pid  # start_server made the server a process-group leader
    cpu_before = cpu_seconds_of_group(group)
    summaries = run_point(
        target,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    cpu_s = cpu_seconds_of_group(group) - cpu_before
    requests = sum(s["requests"] for s in summaries)
    per_cpu = round(requests / cpu_s, 1) if cpu_s > 0 else 0.0
    return median_repeat(summaries) | {"server_cpu_s": round(cpu_s, 2), "per_cpu_s": per_cpu}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the servers, run the interleaved rounds, stop the servers."""
    ctx = Context(work_dir=args.work_dir.resolve(), server_cpus="0")
    servers: dict[str, ServerProcess] = {}
    rounds: list[dict[str, Any]] = []
    try:
        for contender in _contenders(args.batching_off):
            assert contender.start is not None
            servers[contender.name] = contender.start(ctx)
        if args.baseline is not None:
            # another interpreter name makes the server start outside this checkout (cwd =
            # the work dir), so PYTHONPATH decides which code it imports
            other = Context(ctx.work_dir, "0", modelyard_python=_alias(sys.executable))
            with _pythonpath(args.baseline):
                start = starter("modelyard-baseline", BATCHING_ON, 1, "0")
                servers["modelyard-baseline"] = start(other)
        for k in range(1, args.rounds + 1):
            before = _load()
            results: dict[str, dict[str, Any]] = {}
            for name, server in servers.items():
                unary = _point(ctx, server, UNARY, args)
                stream = _point(ctx, server, STREAM, args)
                results[name] = {
                    "unary": unary,
                    "stream": stream,
                    "ratio": round(stream["throughput"] / unary["throughput"], 3),
                    "cpu_ratio": round(stream["per_cpu_s"] / unary["per_cpu_s"], 3),
                }
                print(
                    f"round {k} {name}: unary {unary['throughput']:,.0f} req/s "
                    f"({unary['per_cpu_s']:,.0f}/CPU-s), stream {stream['throughput']:,.0f} "
                    f"msg/s ({stream['per_cpu_s']:,.0f}/CPU-s), {results[name]['ratio']:.2f}x "
                    f"wall, {results[name]['cpu_ratio']:.2f}x per CPU-second",
                    flush=True,
                )
            rounds.append(
                {"round": k, "load_before": before, "load_after": _load(), "servers": results}
            )
    finally:
        for server in servers.values():
            server.stop()
    return {"concurrency": args.concurrency, "duration_s": args.duration, "rounds": rounds}


def table(result: dict[str, Any]) -> list[str]:
    """Markdown rows: per server, each round's unary and stream rates, the ratio's median
    (rounds) per wall-clock second and per server CPU-second.

    >>> point = lambda rate, cpu: {"throughput": rate, "per_cpu_s": cpu}
    >>> r = {"rounds": [{"round": 1, "load_before": [1.0], "load_after": [2.0], "servers": {
    ...     "s": {"unary": point(100.0, 110.0), "stream": point(250.0, 300.0),
    ...           "ratio": 2.5, "cpu_ratio": 2.73}}}]}
    >>> print("\\n".join(table(r)[2:]))
    | s | 100 (110) | 250 (300) | 2.50x (2.50) | 2.73x (2.73) |
    """
    rounds = result["rounds"]
    out = [
        "| server | unary req/s (per CPU-s), per round | stream msg/s (per CPU-s), per round "
        "| stream / unary req/s, median (rounds) | stream / unary per CPU-s, median (rounds) |",
        "|---|---|---|---|---|",
    ]

    def rates(points: list[dict[str, Any]]) -> str:
        return " / ".join(f"{p['throughput']:,.0f} ({p['per_cpu_s']:,.0f})" for p in points)

    def ratios(values: list[float]) -> str:
        spread = ", ".join(f"{x:.2f}" for x in values)
        return f"{statistics.median(values):.2f}x ({spread})"

    for name in rounds[0]["servers"]:
        per = [r["servers"][name] for r in rounds]
        unary = rates([p["unary"] for p in per])
        stream = rates([p["stream"] for p in per])
        wall = ratios([p["ratio"] for p in per])
        cpu = ratios([p["cpu_ratio"] for p in per])
        out.append(f"| {name} | {unary} | {stream} | {wall} | {cpu} |")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--batching-off", action="store_true")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout")
    parser.add_argument("--work-dir", type=Path, default=Path("benchmarks/.work"))
    parser.add_argument(
        "--json",
        type=Path,
        default=latest("stream-vs-unary"),
        help="the raw result (replaced by each run)",
    )
    args = parser.parse_args(argv)
    args.json = checked_output(args.json, "stream-vs-unary")
    return args


def main() -> None:
    """Measure and print the table (and the load average per round)."""
    args = parse_args()
    result = measure(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print("\n".join(table(result)))
    for r in result["rounds"]:
        print(f"round {r['round']}: load {r['load_before']} before, {r['load_after']} after")


if __name__ == "__main__":
    main()
