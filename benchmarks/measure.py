"""Measure one contender: the in-process limit, or a started server endpoint by endpoint.

For each endpoint: closed-loop points (single rows at each concurrency, 512-row requests where
asked), perf_analyzer where the server supports it, and the open-loop search. Results go into
``Run.result`` as they are measured, so a failure keeps what was measured before it. Every
point keeps the load average before and after it, and every window of the load generators the
CPU the server's process group used in it (:mod:`benchmarks.server_cpu`).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.contenders import Contender, Context, Endpoint
from benchmarks.messages import http_infer_body, predict_body
from benchmarks.options import Options
from benchmarks.perf_analyzer import perf_analyzer_point
from benchmarks.points import Target, keep_median, run_json, run_point, search_rate
from benchmarks.processes import ContenderUnavailable, ServerProcess, flags, pin
from benchmarks.reference import MODEL_NAME
from benchmarks.stats import Summary
from benchmarks.system import load_average, memory_of_group

MEASUREMENT_ERRORS = (RuntimeError, OSError, KeyError, ValueError, subprocess.SubprocessError)
BIG_BATCH_ROWS = 512
PERF_ANALYZER_CONCURRENCY = (1, 64)
BIG_BATCH_CONCURRENCY = 4


@dataclass
class Run:
    """State shared by the measurement of one contender."""

    options: Options
    ctx: Context
    contender: Contender
    result: dict[str, Any] = field(default_factory=dict)


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


LIMIT_POINTS = (
    ("onnxruntime", 1),
    ("onnxruntime", 64),
    ("onnxruntime", 512),
    ("lightgbm", 1),
    ("lightgbm", 512),
)


def measure_limit(run: Run) -> None:
    """The in-process limit: onnxruntime at batch 1/64/512, native LightGBM at 1/512."""
    files, opts = run.ctx.files, run.options
    points = []
    for runtime, batch in LIMIT_POINTS:
        load_before = load_average()
        cmd = [
            *pin(run.contender.server_cpus),
            run.ctx.python,
            "-m",
            "benchmarks.limit",
            *flags(
                runtime=runtime,
                batch=batch,
                onnx=files.onnx,
                lightgbm=files.lightgbm,
                rows_file=files.rows,
                duration=min(opts.duration, 3.0),
                warmup=0.5,
                repeats=opts.repeats,
            ),
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
                "load_before": load_before,
                "load_after": load_average(),
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
        server_group=server.process.pid,  # start_server made the server a group leader
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
    cpu = ""
    if m.get("requests_per_cpu_s") is not None:
        cpu = (
            f"  {m['requests_per_cpu_s']:.0f} req/CPU-s (server {m['server_cpu_share']:.2f} "
            f"core, others {m['others_cpu_share']:.2f}, waiting {m.get('server_wait_share')})"
        )
    print(
        f"  {record['endpoint']:<9} c={record['concurrency']:<3} rows={record['rows']:<4} "
        f"{m['throughput']:>9.0f} req/s  p50 {m['p50_ms']} ms  p99 {m['p99_ms']} ms  "
        f"errors {m['errors']}{cpu}  [{m.get('tool')}]",
        flush=True,
    )


def _measured(
    target: Target, opts: Options, *, concurrency: int = 1, rows: int = 1, rate: float = 0.0
) -> dict[str, Any]:
    """One point's median window, with the load average before and after the point."""
    before = load_average()
    windows = run_point(
        target,
        concurrency=concurrency,
        rows=rows,
        rate=rate,
        duration=opts.duration,
        warmup=opts.warmup,
        repeats=opts.repeats,
    )
    return keep_median(windows) | {"load_before": before, "load_after": load_average()}


def measure_endpoint(run: Run, target: Target) -> None:
    """Closed-loop points, the 512-row point, perf_analyzer and the open-loop search."""
    opts, endpoint = run.options, target.endpoint
    points: list[dict[str, Any]] = run.result.setdefault("points", [])
    shapes = [(c, 1) for c in endpoint.concurrencies or run.contender.concurrencies]
    if endpoint.big_batch:
        shapes.append((BIG_BATCH_CONCURRENCY, BIG_BATCH_ROWS))
    for concurrency, rows in shapes:
        point = _measured(target, opts, concurrency=concurrency, rows=rows)
        points.append(_point_record(endpoint, "closed", concurrency, rows, point))
        _print_point(points[-1])
    if endpoint.perf_analyzer and opts.perf_analyzer:
        _perf_analyzer_points(run, target, points)
    for rate in endpoint.rates:
        record = _point_record(endpoint, "open", 0, 1, _measured(target, opts, rate=rate))
        points.append({**record, "rate": rate})
        _print_point(points[-1])
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
    for c in PERF_ANALYZER_CONCURRENCY:
        before = load_average()
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
        point = {
            "median": summary,
            "repeat_throughputs": [summary["throughput"]],
            "load_before": before,
            "load_after": load_average(),
        }
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
            if endpoint.protocol not in server.ports:
                continue
            try:
                measure_endpoint(run, _target(run, server, endpoint, bodies))
            except MEASUREMENT_ERRORS as exc:
                # One broken endpoint must not cost the others (nor the whole run).
                server.notes.append(f"{endpoint.label} failed: {type(exc).__name__}: {exc}")
                print(f"  {endpoint.label} FAILED: {exc}", flush=True)
        run.result["memory"] = memory_of_group(server.process.pid)
        run.result.setdefault("notes", []).extend(server.notes)
    finally:
        server.stop()
