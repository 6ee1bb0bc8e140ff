"""Where the observed server's CPU goes at saturation: CPU per answered request, per thread.

Issue 16's cost bound is a throughput ratio at saturation (REST V2 closed loop c=64, the
server pinned to one core), and every thread of the server shares that core: the event loop,
the session thread (``ort-run``), the prediction log's spooler and shipper, the drift
sketches' fold (an executor thread). The harness gives the ratio; this gives its parts.

Each variant gets a fresh ``modelyard serve`` (the harness's
:func:`~benchmarks.modelyard_server.starter`: 1 worker pinned to ``--server-cpus``, batching
defaults, the reference model; ``off`` / ``log`` / ``sketches`` / ``on`` as in
:data:`~benchmarks.modelyard_server.Observation`), 2 s of unmeasured load, then ``wrk -t1
-c64`` for ``--duration`` seconds from ``--client-cpus``. Around that window it reads every
thread's user and system CPU, context switches and minor faults (``/proc/<pid>/task``) and
the server's answered requests (its metrics endpoint), and reports them per request. Python
threads are named by the kernel only when they name themselves, so the server runs with
:mod:`benchmarks.thread_names` on its path (a ``sitecustomize`` that gives every Python
thread its name, its last 15 characters: ``on-log-spooler``, ``ion-log-shipper``).

Variants are ``CONFIG`` or ``CONFIG@CODE`` (``CODE``: another checkout's directory, e.g. an
export of main, so before and after run in the same rounds); rounds interleave the variants,
reversed every other round; the table gives medians and spreads over rounds.

Run: ``python -m benchmarks.thread_cpu --rounds 3 off on`` (about 12 s per variant and round).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.contenders import V2_INFER_PATH, Context
from benchmarks.measure import _body_files
from benchmarks.modelyard_server import BATCHING_ON, Observation, starter
from benchmarks.observation_cpu import counters
from benchmarks.wrk_load import _run_wrk

ROOT = Path(__file__).resolve().parent.parent
NAMES = Path(__file__).resolve().parent / "thread_names"
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadCounters:
    """One thread's counters at one instant."""

    name: str
    user_s: float
    system_s: float
    switches: int
    faults: int


def threads(pid: int) -> dict[str, ThreadCounters]:
    """Every thread of ``pid`` by thread id (threads that ended meanwhile are skipped)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            continue
        switches = sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        found[task.name] = ThreadCounters(
            name, int(fields[11]) * TICK_S, int(fields[12]) * TICK_S, switches, int(fields[7])
        )
    return found


def per_request(
    before: dict[str, ThreadCounters], after: dict[str, ThreadCounters], requests: float
) -> dict[str, dict[str, float]]:
    """Per thread name: CPU, system CPU (us), context switches and faults per request."""
    out: dict[str, dict[str, float]] = collections.defaultdict(
        lambda: dict.fromkeys(("cpu_us", "system_us", "switches", "faults"), 0.0)
    )
    for tid, end in after.items():
        start = before.get(tid, ThreadCounters(end.name, 0.0, 0.0, 0, 0))
        row = out[end.name]
        row["cpu_us"] += (end.user_s + end.system_s - start.user_s - start.system_s) * 1e6
        row["system_us"] += (end.system_s - start.system_s) * 1e6
        row["switches"] += end.switches - start.switches
        row["faults"] += end.faults - start.faults
    return {
        name: {k: v / requests for k, v in row.items()}
        for name, row in out.items()
        if row["cpu_us"] > 0
    }


def measure(variant: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One fresh server of ``variant`` under wrk c=``args.connections``; per-thread figures
    per request, plus ``total`` and the answered ``rate``."""
    config, _, code = variant.partition("@")
    ctx = Context(
        work_dir=args.work_dir,
        server_cpus=args.server_cpus,
        modelyard_code=Path(code) if code else None,
    )
    body = _body_files(ctx)["v2"]
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{NAMES}{os.pathsep}{path}" if path else str(NAMES)
    try:
        server = starter(f"threads-{config}", BATCHING_ON, 1, args.server_cpus, config_of(config))(
            ctx
        )
    finally:
        os.environ["PYTHONPATH"] = path
    try:
        url = f"http://127.0.0.1:{server.ports['http']}{V2_INFER_PATH}"
        pin = ["taskset", "-c", args.client_cpus]
        _run_wrk(pin, url, body, args.connections, 2)
        pid = server.process.pid
        before, answered = threads(pid), counters(server)["requests"]
        raw = _run_wrk(pin, url, body, args.connections, args.duration)
        after, done = threads(pid), counters(server)["requests"]
        requests = done - answered
        rows = per_request(before, after, requests)
        rows["total"] = {k: sum(r[k] for r in rows.values()) for k in ("cpu_us", "system_us")}
        rows["rate"] = {"requests_s": requests / (raw["duration_us"] / 1e6)}
        return rows
    finally:
        server.stop()


def config_of(name: str) -> Observation:
    """``name`` as an :data:`Observation` (ValueError: not one)."""
    if name not in ("off", "log", "sketches", "on", "on-pg"):
        raise ValueError(f"unknown variant {name!r}: off, log, sketches, on or on-pg")
    return name  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    """Interleaved rounds; print each measurement and the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    for variant in args.variants:
        config_of(variant.partition("@")[0])
    results: dict[str, list[dict[str, dict[str, float]]]] = collections.defaultdict(list)
    for number in range(args.rounds):
        order = args.variants if number % 2 == 0 else args.variants[::-1]
        for variant in order:
            rows = measure(variant, args)
            results[variant].append(rows)
            threads_text = ", ".join(
                f"{name} {row['cpu_us']:.2f}"
                for name, row in sorted(rows.items(), key=lambda kv: -kv[1].get("cpu_us", 0))
                if name not in ("total", "rate") and row["cpu_us"] >= 0.05
            )
            print(
                f"round {number} {variant}: {rows['total']['cpu_us']:.1f} us/request "
                f"({rows['rate']['requests_s']:,.0f} req/s): {threads_text}",
                flush=True,
            )
    print("\nmedian (spread) over rounds, CPU us per answered request:")
    for variant, runs in results.items():
        names = sorted({n for run in runs for n in run} - {"total", "rate"})
        total = [run["total"]["cpu_us"] for run in runs]
        rate = [run["rate"]["requests_s"] for run in runs]
        print(
            f"{variant}: {statistics.median(total):.1f} ({min(total):.1f}-{max(total):.1f}), "
            f"{statistics.median(rate):,.0f} req/s"
        )
        for name in names:
            cpu = [run.get(name, {}).get("cpu_us", 0.0) for run in runs]
            system = [run.get(name, {}).get("system_us", 0.0) for run in runs]
            if statistics.median(cpu) >= 0.05:
                print(
                    f"    {name:16s} {statistics.median(cpu):6.2f} ({min(cpu):.2f}-{max(cpu):.2f})"
                    f"  system {statistics.median(system):.2f}"
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
