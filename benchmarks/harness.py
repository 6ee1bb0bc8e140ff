"""Orchestrate a benchmark run: contenders interleaved over rounds, every point, one JSON.

A run measures the selected contenders one after another, ``--rounds`` times (A, B, C, then
A, B, C again: a shared machine's drift hits every contender alike), recording the load
average before and after each round (:mod:`benchmarks.rounds` turns the rounds into ratios
with a median and a spread; :mod:`benchmarks.measure` records the load around each point
too, and the server's CPU in every window). Each contender's result is written to
``<work>/runs/<run id>/round-<k>/<contender>.json`` (outside git) as soon as it is measured,
so a run interrupted (or a contender that failed) can be resumed with ``--resume <run id>``:
results already measured are loaded, the rest run. The combined run file
``<results>/latest.json`` (the latest run only: results do not grow the repository) and the
report are (re)written at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.contenders import Contender, Context, builtin_contenders
from benchmarks.measure import (
    MEASUREMENT_ERRORS,
    PERF_ANALYZER_CONCURRENCY,
    Run,
    measure_limit,
    measure_server,
)
from benchmarks.mlserver import mlserver_contenders
from benchmarks.modelyard_server import modelyard_contenders
from benchmarks.options import Options
from benchmarks.processes import ContenderUnavailable
from benchmarks.rounds import representative
from benchmarks.system import load_average
from benchmarks.wrk_load import INSTALL_HINT, wrk_path

__all__ = ["Options", "all_contenders", "run_benchmark", "select"]


def all_contenders() -> list[Contender]:
    """Every known contender, in the order they run."""
    return [*builtin_contenders(), *modelyard_contenders(), *mlserver_contenders()]


def select(contenders: list[Contender], options: Options) -> list[Contender]:
    """Filter by ``--only``/``--skip`` (contender names or families)."""

    def named(c: Contender, names: tuple[str, ...]) -> bool:
        return c.name in names or c.family in names

    chosen = [c for c in contenders if not options.only or named(c, options.only)]
    return [c for c in chosen if not named(c, options.skip)]


def estimate_seconds(contender: Contender, options: Options) -> float:
    """A rough duration of one contender's measurement (for the plan printed at the start)."""
    per_point = max(1.0, options.warmup) + options.duration * options.repeats + 1.5
    if contender.family == "limit":
        return 5 * (min(options.duration, 3.0) * options.repeats + 2.5)
    total = 15.0 if contender.family == "mlserver" else 5.0
    for endpoint in contender.endpoints:
        concurrencies = endpoint.concurrencies or contender.concurrencies
        total += (len(concurrencies) + int(endpoint.big_batch) + len(endpoint.rates)) * per_point
        per_run = options.warmup + options.open_duration + 1.5
        if endpoint.open_loop and options.open_loop:
            total += options.search_steps * per_run
        if endpoint.perf_analyzer and options.perf_analyzer:
            total += (options.duration * 2 + 3) * len(PERF_ANALYZER_CONCURRENCY)
    return total


def measure_contender(options: Options, ctx: Context, contender: Contender) -> dict[str, Any]:
    """Measure one contender; failures and unavailability are recorded, never raised."""
    run = Run(
        options,
        ctx,
        contender,
        {
            "name": contender.name,
            "family": contender.family,
            "description": contender.description,
            "server_cpus": contender.server_cpus,
            "client_cpus": contender.client_cpus,
            "status": "ok",
            "points": [],
            "open_loop": [],
        },
    )
    started = time.monotonic()
    print(
        f"== {contender.name}: {contender.description} (server CPU {contender.server_cpus}, "
        f"load generator CPU {contender.client_cpus})",
        flush=True,
    )
    try:
        if contender.family == "limit":
            measure_limit(run)
        else:
            measure_server(run)
    except ContenderUnavailable as exc:
        run.result |= {"status": "unavailable", "reason": str(exc)}
        print(f"  SKIP {contender.name}: {exc}", flush=True)
    except MEASUREMENT_ERRORS as exc:
        run.result |= {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        print(f"  FAILED {contender.name}: {exc}", flush=True)
    run.result["elapsed_s"] = round(time.monotonic() - started, 1)
    return run.result


def _measure_round(
    options: Options, ctx: Context, chosen: list[Contender], round_dir: Path
) -> list[dict[str, Any]]:
    """Measure the chosen contenders once, keeping those a resumed run already has."""
    round_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for contender in chosen:
        path = round_dir / f"{contender.name}.json"
        if options.resume and path.exists():
            previous: dict[str, Any] = json.loads(path.read_text())
            if previous.get("status") == "ok":
                print(f"== {contender.name}: kept from the interrupted run", flush=True)
                results.append(previous)
                continue
        result = measure_contender(options, ctx, contender)
        path.write_text(json.dumps(result, indent=1))
        results.append(result)
    return results


def _measure_rounds(options: Options, ctx: Context, run_dir: Path) -> list[dict[str, Any]]:
    """Measure the selected contenders ``options.rounds`` times, interleaved."""
    chosen = select(all_contenders(), options)
    plan = ", ".join(f"{c.name} ~{estimate_seconds(c, options):.0f}s" for c in chosen)
    total = sum(estimate_seconds(c, options) for c in chosen) * options.rounds / 60
    print(
        f"plan ({options.rounds} rounds): {plan}; about {total:.1f} min if every contender "
        "is available",
        flush=True,
    )
    rounds = []
    for k in range(1, options.rounds + 1):
        print(f"=== round {k}/{options.rounds}", flush=True)
        before = load_average()
        results = _measure_round(options, ctx, chosen, run_dir / f"round-{k}")
        rounds.append(
            {"round": k, "load_before": before, "load_after": load_average(), "contenders": results}
        )
    return rounds


def run_benchmark(options: Options) -> Path:
    """Run (or resume) a benchmark; return the path of the combined run JSON."""
    from benchmarks.report import write_run
    from benchmarks.system import describe_machine, versions

    started = time.time()
    run_id = options.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    run_dir = options.work_dir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    # Absolute: servers may run in another working directory (MLServer).
    ctx = Context(work_dir=options.work_dir.resolve())
    ctx.modelyard_python = options.modelyard_python or ctx.modelyard_python
    machine_before = describe_machine()
    notes = []
    if wrk_path() is None:
        notes.append(f"{INSTALL_HINT}; HTTP closed-loop points used the Python client instead")
        print(f"WARNING: {notes[-1]}", flush=True)
    command, command_file = options.command, run_dir / "command.txt"
    if options.resume and command_file.exists():
        command = f"{command_file.read_text()} (resumed: {command})"
    else:
        command_file.write_text(command)
    rounds = _measure_rounds(options, ctx, run_dir)
    run = {
        "run_id": run_id,
        "command": command,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": {"before": machine_before, "after": describe_machine()},
        "versions": versions(options.work_dir),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "contenders": representative(rounds),
        "rounds": rounds,
        "notes": notes,
    }
    return write_run(run, options.results_dir, options.results_md)
