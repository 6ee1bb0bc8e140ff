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

Variants are ``CONFIG[@CODE][+NAME=VALUE...]`` (:func:`parse_variant`: ``CODE`` another
checkout's directory, e.g. an export of main, so before and after run in the same rounds; each
``+NAME=VALUE`` an environment variable of that server only, a setting under trial); rounds
interleave the variants, reversed every other round; the table gives medians and spreads over
rounds and, per round, the ratios to the first variant of the same round (on a shared machine
the rounds drift by 20 % and more, and only the paired ratios are comparable).

Run: ``python -m benchmarks.thread_cpu --rounds 3 off on`` (about 12 s per variant and round).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.contenders import V2_INFER_PATH, Context
from benchmarks.measure import _body_files
from benchmarks.modelyard_server import BATCHING_ON, Observation, starter
from benchmarks.processes import ServerProcess
from benchmarks.server_metrics import counters
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


def parse_variant(variant: str) -> tuple[str, Path | None, dict[str, str]]:
    """``CONFIG[@CODE][+NAME=VALUE...]`` as (config, code, environment).

    >>> parse_variant("on@/tmp/x+A=1+B=2")
    ('on', PosixPath('/tmp/x'), {'A': '1', 'B': '2'})
    >>> parse_variant("off")
    ('off', None, {})
    """
    head, *extras = variant.split("+")
    config, _, code = head.partition("@")
    config_of(config)
    env = {}
    for extra in extras:
        name, sep, value = extra.partition("=")
        if not sep or not name:
            raise ValueError(f"{extra!r} in {variant!r} is not NAME=VALUE")
        env[name] = value
    return config, Path(code) if code else None, env


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` set in this process's environment (the server's start copies it), then undone."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_variant(
    variant: str, label: str, args: argparse.Namespace, extra_env: dict[str, str] | None = None
) -> tuple[ServerProcess, Context]:
    """A fresh ``modelyard serve`` of ``variant`` (1 worker pinned to ``args.server_cpus``,
    batching defaults, the reference model) and its context; ``extra_env`` beside the
    variant's own settings."""
    config, code, env = parse_variant(variant)
    ctx = Context(work_dir=args.work_dir, server_cpus=args.server_cpus, modelyard_code=code)
    with _environment({**(extra_env or {}), **env}):
        server = starter(f"{label}-{config}", BATCHING_ON, 1, args.server_cpus, config_of(config))(
            ctx
        )
    return server, ctx


def thread_names_env() -> dict[str, str]:
    """The environment that gives every Python thread of a server its kernel name
    (:mod:`benchmarks.thread_names` first on ``PYTHONPATH``)."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{NAMES}{os.pathsep}{path}" if path else str(NAMES)}


def measure(variant: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """One fresh server of ``variant`` under wrk c=``args.connections``; per-thread figures
    per request, plus ``total`` and the answered ``rate``."""
    server, ctx = start_variant(variant, "threads", args, thread_names_env())
    body = _body_files(ctx)["v2"]
    try:
        url = f"http://127.0.0.1:{server.ports['http']}{V2_INFER_PATH}"
        pin = ["taskset", "-c", args.client_cpus]
        _run_wrk(pin, url, body, args.connections, 2)
        pid = server.process.pid
        first = counters(server)
        before = threads(pid)
        raw = _run_wrk(pin, url, body, args.connections, args.duration)
        after = threads(pid)
        last = counters(server)
        requests = last["requests"] - first["requests"]
        runs = last["runs"] - first["runs"]
        rows = per_request(before, after, requests)
        rows["total"] = {k: sum(r[k] for r in rows.values()) for k in ("cpu_us", "system_us")}
        rows["rate"] = {
            "requests_s": requests / (raw["duration_us"] / 1e6),
            "per_run": requests / runs if runs else 0.0,
        }
        return rows
    finally:
        server.stop()


def config_of(name: str) -> Observation:
    """``name`` as an :data:`Observation` (ValueError: not one)."""
    if name not in ("off", "log", "sketches", "on", "on-pg"):
        raise ValueError(f"unknown variant {name!r}: off, log, sketches, on or on-pg")
    return name  # type: ignore[return-value]


def variant_arguments(
    description: str | None, *, rounds: int, duration: float
) -> argparse.ArgumentParser:
    """The command line of a benchmark of variants under wrk at saturation (``thread_cpu``,
    ``corun``): the variants, rounds, window, connections, CPUs and work folder."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--duration", type=float, default=duration)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / ".work")
    return parser


def parse_variant_arguments(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """``argv`` parsed; every variant checked (:func:`parse_variant`), a bad one a usage error."""
    args = parser.parse_args(argv)
    for variant in args.variants:
        try:
            parse_variant(variant)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def alternation(variants: list[str], points: int, rounds: int) -> list[list[list[int]]]:
    """Per round, per point, the order of the variants' windows (indexes): ABBA, reversed
    from point to point and from round to round, so no variant is always measured first.

    >>> alternation(["off", "on"], points=2, rounds=2)
    [[[0, 1], [1, 0]], [[1, 0], [0, 1]]]
    """
    forward = list(range(len(variants)))
    return [
        [forward if (number + j) % 2 == 0 else forward[::-1] for j in range(points)]
        for number in range(rounds)
    ]


def main(argv: list[str] | None = None) -> None:
    """Interleaved rounds; print each measurement and the medians."""
    parser = variant_arguments(__doc__, rounds=3, duration=4.0)
    args = parse_variant_arguments(parser, argv)
    # NOTE: kept by position, not by name: a variant may be given twice (an A/A control)
    results: list[list[dict[str, dict[str, float]]]] = [[] for _ in args.variants]
    for number, (order,) in enumerate(alternation(args.variants, 1, args.rounds)):
        for index in order:
            variant = args.variants[index]
            rows = measure(variant, args)
            results[index].append(rows)
            threads_text = ", ".join(
                f"{name} {row['cpu_us']:.2f}"
                for name, row in sorted(rows.items(), key=lambda kv: -kv[1].get("cpu_us", 0))
                if name not in ("total", "rate") and row["cpu_us"] >= 0.05
            )
            print(
                f"round {number} {variant}: {rows['total']['cpu_us']:.1f} us/request "
                f"({rows['rate']['requests_s']:,.0f} req/s, "
                f"{rows['rate']['per_run']:.1f} requests per run): {threads_text}",
                flush=True,
            )
    print("\nmedian (spread) over rounds, CPU us per answered request:")
    base = results[0]
    for variant, runs in zip(args.variants, results, strict=True):
        names = sorted({n for run in runs for n in run} - {"total", "rate"})
        total = [run["total"]["cpu_us"] for run in runs]
        rate = [run["rate"]["requests_s"] for run in runs]
        line = (
            f"{variant}: {statistics.median(total):.1f} ({min(total):.1f}-{max(total):.1f}), "
            f"{statistics.median(rate):,.0f} req/s"
        )
        if runs is not base:
            pairs = list(zip(runs, base, strict=True))
            cpu = [b["total"]["cpu_us"] / r["total"]["cpu_us"] for r, b in pairs]
            answered = [r["rate"]["requests_s"] / b["rate"]["requests_s"] for r, b in pairs]
            line += (
                f"; to {args.variants[0]} in the same round: throughput "
                f"{statistics.median(answered):.3f}x ({min(answered):.3f}-{max(answered):.3f}),"
                f" requests per CPU-s {statistics.median(cpu):.3f}x"
                f" ({min(cpu):.3f}-{max(cpu):.3f})"
            )
        print(line)
        for name in names:
            cpu = [run.get(name, {}).get("cpu_us", 0.0) for run in runs]
            system = [run.get(name, {}).get("system_us", 0.0) for run in runs]
            switches = [run.get(name, {}).get("switches", 0.0) * 1000 for run in runs]
            faults = [run.get(name, {}).get("faults", 0.0) * 1000 for run in runs]
            if statistics.median(cpu) >= 0.05:
                print(
                    f"    {name:16s} {statistics.median(cpu):6.2f} ({min(cpu):.2f}-{max(cpu):.2f})"
                    f"  system {statistics.median(system):.2f}"
                    f"  per 1,000 requests: switches {statistics.median(switches):.0f},"
                    f" minor faults {statistics.median(faults):.1f}"
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
