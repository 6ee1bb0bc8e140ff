"""Batching on vs off in one server, open and closed loop (issue 21: the adaptive queue delay).

One ``modelyard serve`` process pinned to CPU 0 serves copies of the reference model under
different batching configs (by default ``reference`` with the server's defaults and ``off``
with ``"batching": {"enabled": false}``); the gRPC load generator (``benchmarks.grpc_load``,
one row per request) runs pinned to CPU 1. Every point (open loop at fixed rates, closed loop
at fixed concurrencies) is measured on every model in turn, and the whole sequence is repeated
``--rounds`` times, the model order alternating, so a change in the machine's load hits both
sides alike. Per point and model the table gives the median over rounds and the spread; the
ratio column is computed per round (same minute) and its median reported.

Besides the client's figures, each run records the server's CPU share over the run (sum over
its threads of ``/proc/<pid>/task/*/schedstat`` CPU time, per wall second) and the share of
time its threads waited on the run queue: the load signals the batcher's rule is judged by.

Run: ``python -m benchmarks.open_loop_batching --rounds 3`` (``--work-dir`` reuses the
harness's built reference model; ``--model name='{"linger_us": 0}'`` adds a variant). The raw
result goes to ``--out``, by default ``benchmarks/results/open-loop-batching-latest.json``,
replacing the previous run's (one file per benchmark kind: :mod:`benchmarks.results_files`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.modelyard_server import serve_command
from benchmarks.points import run_json
from benchmarks.processes import ServerProcess, await_ready, free_port, pin, start_server
from benchmarks.reference import build_reference
from benchmarks.results_files import checked_output, latest
from benchmarks.server_metrics import counters

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = {"reference": {}, "off": {"enabled": False}}


def uptime() -> str:
    """The machine's load line (``uptime``)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def write_repository(root: Path, onnx: Path, models: dict[str, dict[str, Any]]) -> None:
    """A model repository with one copy of ``onnx`` per model, each with its batching."""
    shutil.rmtree(root, ignore_errors=True)
    for name, batching in models.items():
        (root / name / "1").mkdir(parents=True)
        shutil.copyfile(onnx, root / name / "1" / "model.onnx")
        (root / name / "config.json").write_text(json.dumps({"batching": batching}))


@contextmanager
def serving(root: Path, models: list[str], log: Path, cpus: str) -> Iterator[ServerProcess]:
    """``modelyard serve`` on ``root``, pinned to ``cpus``, ready for every model."""
    grpc_port, http, metrics = free_port(), free_port(), free_port()
    cmd = serve_command(sys.executable, root, cpus, 1, grpc_port, http, metrics)
    server = start_server("modelyard", cmd, log)
    server.ports.update(grpc=grpc_port, metrics=metrics)
    try:
        for model in models:
            await_ready(server, 120.0, grpc_targets=(f"127.0.0.1:{grpc_port}",), model=model)
        yield server
    finally:
        server.stop()


def sched_totals(pid: int) -> tuple[int, int, int]:
    """CPU ns and run-queue wait ns summed over the threads of ``pid``, and the run-queue
    wait ns of its main thread (the event loop) alone (schedstat)."""
    cpu = wait = main_wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
        cpu += int(fields[0])
        wait += int(fields[1])
        if task.name == str(pid):
            main_wait = int(fields[1])
    return cpu, wait, main_wait


def core_idle_us(cpu: int) -> int:
    """Idle time of CPU ``cpu`` in microseconds (cpuidle residency; 0 where not exposed)."""
    total = 0
    for state in Path(f"/sys/devices/system/cpu/cpu{cpu}/cpuidle").glob("state*"):
        total += int((state / "time").read_text())
    return total


def session_runs(server: ServerProcess, model: str) -> tuple[float, float]:
    """Session runs and rows run so far for ``model`` (the server's Prometheus metrics)."""
    found = counters(server, model)
    return found["runs"], found["rows"]


def run_once(
    server: ServerProcess, args: argparse.Namespace, model: str, point: dict[str, float]
) -> dict[str, Any]:
    """One load-generator run on ``model`` at ``point`` with the server's CPU figures."""
    cmd = [
        *pin(args.client_cpus),
        sys.executable,
        "-m",
        "benchmarks.grpc_load",
        "--target",
        f"127.0.0.1:{server.ports['grpc']}",
        "--model",
        model,
        "--rows-file",
        str(args.rows_file),
        "--duration",
        str(args.duration),
        "--warmup",
        str(args.warmup),
    ]
    if "rate" in point:
        cmd += ["--rate", str(point["rate"])]
    else:
        cmd += ["--concurrency", str(int(point["concurrency"]))]
    pid = server.process.pid
    runs0, rows0 = session_runs(server, model)
    cpu0, wait0, main0 = sched_totals(pid)
    core = int(args.server_cpus.split(",")[0])
    idle0 = core_idle_us(core)
    wall0 = time.monotonic_ns()
    summary = run_json(cmd, timeout=args.warmup + args.duration + 120)[0]
    wall = time.monotonic_ns() - wall0
    cpu1, wait1, main1 = sched_totals(pid)
    idle = core_idle_us(core) - idle0
    runs1, rows1 = session_runs(server, model)
    return summary | {
        "core_idle_share": round(idle * 1000 / wall, 3),
        "rows_per_run": round((rows1 - rows0) / max(runs1 - runs0, 1), 1),
        "server_cpu_share": round((cpu1 - cpu0) / wall, 3),
        "server_runq_share": round((wait1 - wait0) / wall, 3),
        "loop_runq_share": round((main1 - main0) / wall, 3),
    }


def points(args: argparse.Namespace) -> list[dict[str, float]]:
    """The open-loop rates, then the closed-loop concurrencies."""
    rates = [{"rate": float(r)} for r in args.rates.split(",") if r]
    closed = [{"concurrency": float(c)} for c in args.concurrencies.split(",") if c]
    return rates + closed


def label(point: dict[str, float]) -> str:
    """A point's name in the table."""
    if "rate" in point:
        return f"open {point['rate']:,.0f}/s"
    return f"closed c={point['concurrency']:.0f}"


def measure(args: argparse.Namespace, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Start the server, run every round, return the raw results."""
    files = build_reference(args.work_dir)
    args.rows_file = files.rows
    root = args.work_dir / "open_loop_batching" / "repository"
    write_repository(root, files.onnx, models)
    names = list(models)
    results: list[dict[str, Any]] = []
    load_before = uptime()
    log = args.work_dir / "open_loop_batching" / "server.log"
    with serving(root, names, log, args.server_cpus) as server:
        for round_no in range(args.rounds):
            order = names if round_no % 2 == 0 else names[::-1]
            for point in points(args):
                for model in order:
                    row = run_once(server, args, model, point)
                    row |= {"round": round_no, "model": model, "point": label(point)}
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    return {
        "uptime_before": load_before,
        "uptime_after": uptime(),
        "models": models,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "results": results,
    }


def _spread(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def table(run: dict[str, Any], baseline: str) -> str:
    """A markdown table: per point and model, medians (spread) over rounds; per-round ratios
    of throughput and p50 to ``baseline``."""
    rows = run["results"]
    models = list(run["models"])
    lines = [
        "| point | model | req/s | p50 ms | p99 ms | req/s / "
        f"{baseline} | p50 / {baseline} | rows/run | server CPU | core idle |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for point in dict.fromkeys(r["point"] for r in rows):
        for model in models:
            mine = sorted(
                (r for r in rows if r["point"] == point and r["model"] == model),
                key=lambda r: r["round"],
            )
            base = sorted(
                (r for r in rows if r["point"] == point and r["model"] == baseline),
                key=lambda r: r["round"],
            )
            tput = [r["throughput"] for r in mine]
            p50 = [r["p50_ms"] or 0.0 for r in mine]
            p99 = [r["p99_ms"] or 0.0 for r in mine]
            pairs = list(zip(mine, base, strict=True))
            ratio = [m["throughput"] / b["throughput"] for m, b in pairs if b["throughput"]]
            p50_ratio = [(m["p50_ms"] or 0.0) / b["p50_ms"] for m, b in pairs if b["p50_ms"]]
            med = {
                key: statistics.median(r[key] for r in mine)
                for key in ("rows_per_run", "server_cpu_share", "core_idle_share")
            }
            lines.append(
                f"| {point} | {model} | {_spread(tput, 0)} | {_spread(p50, 2)} | "
                f"{_spread(p99, 2)} | {_spread(ratio, 2)} | {_spread(p50_ratio, 2)} | "
                f"{med['rows_per_run']:.1f} | {med['server_cpu_share']:.2f} | "
                f"{med['core_idle_share']:.2f} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rates", default="1000,2500,4000", help="open-loop requests/s")
    parser.add_argument("--concurrencies", default="1,8,64", help="closed-loop clients")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a model and its batching config (default: reference={} and off)",
    )
    parser.add_argument("--baseline", default="off", help="the model the ratios divide by")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / ".work")
    parser.add_argument(
        "--out",
        type=Path,
        default=latest("open-loop-batching"),
        help="the raw results (JSON; replaced by each run)",
    )
    parser.add_argument("--table-from", type=Path, help="only print the table of saved results")
    args = parser.parse_args(argv)
    args.out = checked_output(args.out, "open-loop-batching")
    return args


def main() -> None:
    """Measure, save the raw results, print the table."""
    args = parse_args()
    if args.table_from:
        print(table(json.loads(args.table_from.read_text()), args.baseline))
        return
    models = dict(DEFAULT_MODELS)
    for spec in args.model:
        name, _, config = spec.partition("=")
        models[name] = json.loads(config)
    run = measure(args, models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(run, indent=1))
    print(f"before: {run['uptime_before']}\nafter:  {run['uptime_after']}")
    print(table(run, args.baseline))


if __name__ == "__main__":
    main()
