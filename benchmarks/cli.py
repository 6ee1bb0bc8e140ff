"""Command line of the benchmark harness: ``python -m benchmarks run [options]``.

Every knob is a flag (the make targets pass them through ``BENCH_ARGS``): point duration,
warm-up, repeats, the contender subset, the open-loop search, the SLA, where results go, and
``--resume RUN_ID`` to finish an interrupted run.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from benchmarks.harness import Options, all_contenders, run_benchmark


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
@click.option("--only", default="", help="Comma-separated contender names or families to run.")
@click.option("--skip", default="", help="Comma-separated contender names or families to skip.")
@click.option("--open-loop/--no-open-loop", default=True, show_default=True)
@click.option("--search-steps", default=4, show_default=True, help="Open-loop probes.")
@click.option("--sla-p99-ms", default=10.0, show_default=True)
@click.option("--perf-analyzer/--no-perf-analyzer", default=True, show_default=True)
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("benchmarks/.work"))
@click.option("--results-dir", type=click.Path(path_type=Path), default=Path("benchmarks/results"))
@click.option(
    "--results-md", type=click.Path(path_type=Path), default=Path("benchmarks/RESULTS.md")
)
@click.option("--resume", "resume_id", default="", help="Finish the run with this id.")
def run(
    duration: float,
    warmup: float,
    repeats: int,
    only: str,
    skip: str,
    open_loop: bool,
    search_steps: int,
    sla_p99_ms: float,
    perf_analyzer: bool,
    work_dir: Path,
    results_dir: Path,
    results_md: Path,
    resume_id: str,
) -> None:
    """Run every selected contender one after another and write the results."""
    options = Options(
        duration=duration,
        warmup=warmup,
        repeats=repeats,
        only=_names(only),
        skip=_names(skip),
        open_loop=open_loop,
        search_steps=search_steps,
        sla_p99_ms=sla_p99_ms,
        perf_analyzer=perf_analyzer,
        work_dir=work_dir,
        results_dir=results_dir,
        results_md=results_md,
        run_id=resume_id,
        resume=bool(resume_id),
        command="python -m benchmarks " + shlex.join(sys.argv[1:]),
    )
    path = run_benchmark(options)
    click.echo(f"results: {path} and {results_md}")
