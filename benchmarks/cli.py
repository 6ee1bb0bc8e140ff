"""Command line of the benchmark harness: ``python -m benchmarks run [options]``.

Every knob is a flag (the make targets pass them through ``BENCH_ARGS``): point duration,
warm-up, repeats, the contender subset, the open-loop search, the SLA, where results go, and
``--resume RUN_ID`` to finish an interrupted run; ``--rounds`` interleaved rounds.
``python -m benchmarks plots`` regenerates the plots from ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import click

from benchmarks.harness import Options, all_contenders, run_benchmark
from benchmarks.loadtest import LoadTest, run_loadtest, start_local
from benchmarks.mlserver import ensure_mlserver
from benchmarks.perf_analyzer import ensure_perf_analyzer
from benchmarks.processes import ContenderUnavailable
from benchmarks.reference import build_reference
from benchmarks.report import write_plots
from benchmarks.results_files import RESULTS_DIR, checked_output, latest


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


@click.group()
def bench() -> None:
    """Serving benchmark harness."""


@bench.command("list")
def list_contenders() -> None:
    """List the contenders (name, family, description)."""
    for c in all_contenders():
        click.echo(f"{c.name:<26} {c.family:<10} {c.description}")


@bench.command()
@click.option("--duration", default=5.0, show_default=True, help="Measured seconds per point.")
@click.option("--warmup", default=1.0, show_default=True, help="Warm-up seconds per point.")
@click.option("--repeats", default=3, show_default=True, help="Repeats per point (median kept).")
@click.option(
    "--rounds", default=3, show_default=True, help="Interleaved rounds over all contenders."
)
@click.option("--only", default="", help="Comma-separated contender names or families to run.")
@click.option("--skip", default="", help="Comma-separated contender names or families to skip.")
@click.option("--open-loop/--no-open-loop", default=True, show_default=True)
@click.option("--search-steps", default=3, show_default=True, help="Open-loop probes.")
@click.option("--open-duration", default=3.0, show_default=True, help="Seconds per probe.")
@click.option("--sla-p99-ms", default=10.0, show_default=True)
@click.option("--perf-analyzer/--no-perf-analyzer", default=True, show_default=True)
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("benchmarks/.work"))
@click.option(
    "--results-dir",
    type=click.Path(path_type=Path),
    default=RESULTS_DIR,
    help="Where latest.json (replaced by each run) and the plots go.",
)
@click.option(
    "--results-md", type=click.Path(path_type=Path), default=Path("benchmarks/RESULTS.md")
)
@click.option("--resume", "resume_id", default="", help="Finish the run with this id.")
@click.option("--modelyard-python", default="", help="Interpreter for `-m modelyard serve`.")
def run(
    duration: float,
    warmup: float,
    repeats: int,
    rounds: int,
    only: str,
    skip: str,
    open_loop: bool,
    search_steps: int,
    open_duration: float,
    sla_p99_ms: float,
    perf_analyzer: bool,
    work_dir: Path,
    results_dir: Path,
    results_md: Path,
    resume_id: str,
    modelyard_python: str,
) -> None:
    """Run every selected contender one after another and write the results."""
    options = Options(
        duration=duration,
        warmup=warmup,
        repeats=repeats,
        rounds=rounds,
        only=_names(only),
        skip=_names(skip),
        open_loop=open_loop,
        search_steps=search_steps,
        open_duration=open_duration,
        sla_p99_ms=sla_p99_ms,
        perf_analyzer=perf_analyzer,
        work_dir=work_dir,
        results_dir=results_dir,
        results_md=results_md,
        run_id=resume_id,
        resume=bool(resume_id),
        modelyard_python=modelyard_python,
        command="python -m benchmarks " + shlex.join(sys.argv[1:]),
    )
    path = run_benchmark(options)
    click.echo(f"results: {path} and {results_md}")


@bench.command()
@click.option(
    "--run",
    "run_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=latest("harness"),
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=RESULTS_DIR,
    show_default=True,
)
def plots(run_file: Path, out: Path) -> None:
    """Regenerate the PNG plots (p99 vs throughput per protocol) from a run's raw JSON."""
    for path in write_plots(json.loads(run_file.read_text()), out):
        click.echo(str(path))


@bench.command()
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("benchmarks/.work"))
def prepare(work_dir: Path) -> None:
    """Install MLServer and perf_analyzer and build the model files (one-time set-up)."""
    work_dir = work_dir.resolve()
    files = build_reference(work_dir)
    click.echo(f"reference model: {files.onnx}")
    click.echo(f"MLServer: {ensure_mlserver(work_dir)}")
    try:
        click.echo(f"perf_analyzer: {ensure_perf_analyzer(work_dir)[0]}")
    except ContenderUnavailable as exc:
        click.echo(f"perf_analyzer not available (optional): {exc}")


@bench.command()
@click.option(
    "--start",
    "start_name",
    default="",
    help="Start this harness contender locally (e.g. modelyard, naive, echo-grpc).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--http-port", default=8000, show_default=True)
@click.option("--grpc-port", default=8001, show_default=True)
@click.option("--protocols", default="http,grpc", show_default=True)
@click.option("--users", default=16, show_default=True)
@click.option("--run-time", default="20s", show_default=True)
@click.option("--target-rps", default=0.0, show_default=True, help="0: as fast as possible.")
@click.option("--sla-p99-ms", default=25.0, show_default=True)
@click.option("--sla-max-error-rate", default=0.001, show_default=True)
@click.option("--sla-min-rps", default=0.0, show_default=True)
@click.option("--no-predict", is_flag=True, help="Server has no POST /predict.")
@click.option(
    "--log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=latest("loadtest"),
    help="Also write the locust output here (replaced by each run).",
)
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("benchmarks/.work"))
def loadtest(
    start_name: str,
    host: str,
    http_port: int,
    grpc_port: int,
    protocols: str,
    users: int,
    run_time: str,
    target_rps: float,
    sla_p99_ms: float,
    sla_max_error_rate: float,
    sla_min_rps: float,
    no_predict: bool,
    log: Path,
    work_dir: Path,
) -> None:
    """Run the locust users headless with SLA assertions (exit 1 on a violation)."""
    test = LoadTest(
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        protocols=_names(protocols),
        users=users,
        run_time=run_time,
        target_rps=target_rps,
        sla_p99_ms=sla_p99_ms,
        sla_max_error_rate=sla_max_error_rate,
        sla_min_rps=sla_min_rps,
        no_predict=no_predict,
        log=checked_output(log, "loadtest"),
        command="python -m benchmarks " + shlex.join(sys.argv[1:]),
    )
    if not start_name:
        sys.exit(run_loadtest(test))
    server, offered = start_local(start_name, work_dir)
    try:
        wanted = tuple(p for p in test.protocols if p in offered)
        test = replace(
            test,
            protocols=wanted,
            http_port=server.ports.get("http", http_port),
            grpc_port=server.ports.get("grpc", grpc_port),
            no_predict=no_predict or server.name != "modelyard",
        )
        code = run_loadtest(test)
    finally:
        server.stop()
    sys.exit(code)
