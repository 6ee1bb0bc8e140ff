"""Orchestrate a benchmark run: contenders one after another, every point, JSON per run.

Each contender's result is written to ``<results>/<run id>/<contender>.json`` as soon as it is
measured, so a run interrupted (or a contender that failed) can be resumed with
``--resume <run id>``: contenders already measured are loaded, the rest run. The combined run
file ``<results>/<run id>.json`` and the report are (re)written at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.contenders import Contender, Context, Endpoint, builtin_contenders
from benchmarks.messages import http_infer_body, predict_body
from benchmarks.mlserver import mlserver_contenders
from benchmarks.modelyard_server import modelyard_contenders
from benchmarks.perf_analyzer import perf_analyzer_point
from benchmarks.points import Target, keep_median, run_json, run_point, search_rate
from benchmarks.processes import ContenderUnavailable, ServerProcess, pin
from benchmarks.reference import MODEL_NAME
from benchmarks.stats import Summary
from benchmarks.system import memory_of_group

BIG_BATCH_ROWS = 512
BIG_BATCH_CONCURRENCY = 4


@dataclass
class Options:
    """Knobs of one run (all settable from the command line)."""

    duration: float = 5.0
    warmup: float = 1.0
    repeats: int = 3
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    open_loop: bool = True
    search_steps: int = 4
    open_duration: float = 3.0
    sla_p99_ms: float = 10.0
    perf_analyzer: bool = True
    work_dir: Path = Path("benchmarks/.work")
    results_dir: Path = Path("benchmarks/results")
    results_md: Path = Path("benchmarks/RESULTS.md")
    run_id: str = ""
    resume: bool = False
    command: str = ""
    modelyard_python: str = ""


@dataclass
class Run:
    """State shared by the measurement of one contender."""

    options: Options
    ctx: Context
    contender: Contender
    result: dict[str, Any] = field(default_factory=dict)


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
        total += (len(concurrencies) + int(endpoint.big_batch)) * per_point
        per_run = options.warmup + options.open_duration + 1.5
        if endpoint.open_loop and options.open_loop:
            total += options.search_steps * per_run
        if endpoint.perf_analyzer and options.perf_analyzer:
            total += 2 * (options.duration * 2 + 3)
    return total


def _body_files(ctx: Context) -> dict[str, Path]:
    rows = np.load(ctx.rows)
    folder = ctx.work_dir / "bodies"
    folder.mkdir(parents=True, exist_ok=True)
    bodies = {"v2": http_infer_body(rows[:1]), "predict": predict_body(rows[0])}
    paths = {}
    for name, body in bodies.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_bytes(body)
    return paths


def measure_limit(run: Run) -> None:
    """The in-process limit: onnxruntime at batch 1/64/512, native LightGBM at 1/512."""
    files, opts = run.ctx.files, run.options
    points = []
    for runtime, batch in (
        ("onnxruntime", 1),
        ("onnxruntime", 64),
        ("onnxruntime", 512),
        ("lightgbm", 1),
        ("lightgbm", 512),
    ):
        cmd = [
            *pin(run.contender.server_cpus),
            run.ctx.python,
            "-m",
            "benchmarks.limit",
            "--runtime",
            runtime,
            "--batch",
            str(batch),
            "--onnx",
            str(files.onnx),
            "--lightgbm",
            str(files.lightgbm),
            "--rows-file",
            str(files.rows),
            "--duration",
            str(min(opts.duration, 3.0)),
            "--warmup",
            "0.5",
            "--repeats",
            str(opts.repeats),
        ]
        point = keep_median(run_json(cmd, 120.0))
        points.append(
            {
                "endpoint": runtime,
                "protocol": "in-process",
                "mode": "closed",
                "concurrency": 1,
                "rows": batch,
                "tool": "in-process timer",
                **point,
            }
        )
        print(f"  {runtime} batch {batch}: {point['median']['rows_per_s']:.0f} rows/s", flush=True)
    run.result["points"] = points


def _target(run: Run, server: ServerProcess, endpoint: Endpoint, bodies: dict[str, Path]) -> Target:
    port = server.ports["grpc" if endpoint.protocol == "grpc" else "http"]
    return Target(
        endpoint=endpoint,
        address=f"127.0.0.1:{port}",
        client_cpus=run.contender.client_cpus,
        rows_file=run.ctx.rows,
        body_file=bodies.get(endpoint.body) if endpoint.protocol == "http" else None,
        python=run.ctx.python,
    )


def _point_record(
    endpoint: Endpoint, mode: str, concurrency: int, rows: int, point: dict[str, Any]
) -> dict[str, Any]:
    return {
        "endpoint": endpoint.label,
        "protocol": endpoint.protocol,
        "mode": mode,
        "concurrency": concurrency,
        "rows": rows,
        "tool": point["median"].get("tool"),
        **point,
    }


def _print_point(record: dict[str, Any]) -> None:
    m = record["median"]
    print(
        f"  {record['endpoint']:<9} c={record['concurrency']:<3} rows={record['rows']:<4} "
        f"{m['throughput']:>9.0f} req/s  p50 {m['p50_ms']} ms  p99 {m['p99_ms']} ms  "
        f"errors {m['errors']}  [{m.get('tool')}]",
        flush=True,
    )


def measure_endpoint(run: Run, target: Target) -> None:
    """Closed-loop points, the 512-row point, perf_analyzer and the open-loop search."""
    opts, endpoint = run.options, target.endpoint
    points: list[dict[str, Any]] = run.result.setdefault("points", [])
    shapes = [(c, 1) for c in endpoint.concurrencies or run.contender.concurrencies]
    if endpoint.big_batch:
        shapes.append((BIG_BATCH_CONCURRENCY, BIG_BATCH_ROWS))
    for concurrency, rows in shapes:
        windows = run_point(
            target,
            concurrency=concurrency,
            rows=rows,
            duration=opts.duration,
            warmup=opts.warmup,
            repeats=opts.repeats,
        )
        point = keep_median(windows)
        points.append(_point_record(endpoint, "closed", concurrency, rows, point))
        _print_point(points[-1])
    if endpoint.perf_analyzer and opts.perf_analyzer:
        _perf_analyzer_points(run, target, points)
    if endpoint.open_loop and opts.open_loop:
        _open_loop(run, target, points)


def _open_loop(run: Run, target: Target, points: list[dict[str, Any]]) -> None:
    """Search the sustained rate, bounded by the best closed-loop single-row throughput."""
    opts, endpoint = run.options, target.endpoint
    ceiling = max(
        (
            p["median"]["throughput"]
            for p in points
            if p["endpoint"] == endpoint.label and p["rows"] == 1
        ),
        default=0.0,
    )
    if ceiling <= 0:
        return

    def at_rate(rate: float) -> Summary:
        return run_point(target, rate=rate, duration=opts.open_duration, warmup=opts.warmup)[0]

    search = search_rate(at_rate, ceiling, opts.search_steps, opts.sla_p99_ms)
    tool = search["tested"][0]["summary"].get("tool")
    run.result.setdefault("open_loop", []).append(
        {"endpoint": endpoint.label, "protocol": endpoint.protocol, "tool": tool, **search}
    )
    print(
        f"  {endpoint.label:<9} open loop: sustains {search['sustained_rate']} req/s with "
        f"p99 < {opts.sla_p99_ms} ms (lowest failing rate {search['lowest_failed_rate']})",
        flush=True,
    )


def _perf_analyzer_points(run: Run, target: Target, points: list[dict[str, Any]]) -> None:
    for c in (1, 64):
        try:
            summary = perf_analyzer_point(
                run.ctx.work_dir,
                target.client_cpus,
                target.address,
                MODEL_NAME,
                c,
                run.options.duration,
            )
        except ContenderUnavailable as exc:
            print(f"  perf_analyzer skipped: {exc}", flush=True)
            run.result.setdefault("notes", []).append(f"perf_analyzer skipped: {exc}")
            return
        point = {"median": summary, "repeat_throughputs": [summary["throughput"]]}
        points.append(_point_record(target.endpoint, "closed", c, 1, point))
        _print_point(points[-1])


def measure_server(run: Run) -> None:
    """Start the contender's server, measure every endpoint, record memory, stop it."""
    assert run.contender.start is not None
    run.ctx.server_cpus = run.contender.server_cpus
    bodies = _body_files(run.ctx)
    server = run.contender.start(run.ctx)
    try:
        for endpoint in run.contender.endpoints:
            if endpoint.protocol in server.ports:
                measure_endpoint(run, _target(run, server, endpoint, bodies))
        run.result["memory"] = memory_of_group(server.process.pid)
        run.result.setdefault("notes", []).extend(server.notes)
    finally:
        server.stop()


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
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        run.result |= {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
        print(f"  FAILED {contender.name}: {exc}", flush=True)
    run.result["elapsed_s"] = round(time.monotonic() - started, 1)
    return run.result


def run_benchmark(options: Options) -> Path:
    """Run (or resume) a benchmark; return the path of the combined run JSON."""
    from benchmarks.report import write_run
    from benchmarks.system import describe_machine, versions

    started = time.time()
    run_id = options.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    run_dir = options.results_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    work_dir = options.work_dir.resolve()  # servers may run in another cwd (MLServer)
    ctx = Context(work_dir=work_dir)
    if options.modelyard_python:
        ctx.modelyard_python = options.modelyard_python
    machine_before = describe_machine()
    results = []
    chosen = select(all_contenders(), options)
    plan = ", ".join(f"{c.name} ~{estimate_seconds(c, options):.0f}s" for c in chosen)
    total = sum(estimate_seconds(c, options) for c in chosen)
    print(f"plan: {plan}; about {total / 60:.1f} min if every contender is available", flush=True)
    for contender in chosen:
        path = run_dir / f"{contender.name}.json"
        if options.resume and path.exists():
            previous = json.loads(path.read_text())
            if previous.get("status") == "ok":
                print(f"== {contender.name}: kept from the interrupted run", flush=True)
                results.append(previous)
                continue
        result = measure_contender(options, ctx, contender)
        path.write_text(json.dumps(result, indent=1))
        results.append(result)
    run = {
        "run_id": run_id,
        "command": options.command,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "machine": {"before": machine_before, "after": describe_machine()},
        "versions": versions(options.work_dir),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "contenders": results,
    }
    return write_run(run, options.results_dir, options.results_md)
