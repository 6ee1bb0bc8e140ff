"""``modelyard experiments``: list experiments, search, show and compare runs.

Every command reads the local MLflow store of the settings, or a control plane with
``--url``. Errors (a bad filter, an unknown run) end the command with one line, exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
import msgspec

from modelyard.commands import settings_from_context

if TYPE_CHECKING:
    from control_plane.tracking.remote import RemoteTracking
    from control_plane.tracking.tracker import ExperimentTracker

URL_OPTION = click.option(
    "--url", default=None, help="Control-plane base URL (default: the local MLflow store)."
)


@contextmanager
def _backend(url: str | None) -> Iterator[ExperimentTracker | RemoteTracking]:
    if url is None:
        from control_plane.tracking.tracker import ExperimentTracker

        yield ExperimentTracker.from_settings(settings_from_context().tracking)
        return
    from control_plane.tracking.remote import RemoteTracking

    remote = RemoteTracking(url)
    try:
        yield remote
    finally:
        remote.close()


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2))


@click.group("experiments")
def experiments() -> None:
    """Experiments and runs in the MLflow tracking store."""


@experiments.command("list")
@URL_OPTION
def list_experiments(url: str | None) -> None:
    """List the active experiments."""
    with _backend(url) as backend:
        found = backend.list_experiments()
    for experiment in found:
        click.echo(f"{experiment.experiment_id}\t{experiment.name}")


@experiments.command("search")
@URL_OPTION
@click.option("--experiment", "-e", "names", multiple=True, help="Experiment name (repeatable).")
@click.option("--filter", "filter_string", default="", help="MLflow filter, e.g. metrics.auc>0.8")
@click.option("--order-by", multiple=True, help="e.g. 'metrics.auc DESC' (repeatable).")
@click.option("--max-results", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def search_runs(
    url: str | None,
    names: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    as_json: bool,
) -> None:
    """Search runs with MLflow's filter grammar, ordered by metrics, params or attributes."""
    with _backend(url) as backend:
        runs = backend.search_runs(
            list(names), filter=filter_string, order_by=list(order_by), max_results=max_results
        )
    if as_json:
        _echo_json(runs)
        return
    for run in runs:
        metrics = " ".join(f"{key}={value:.6g}" for key, value in sorted(run.metrics.items()))
        click.echo(f"{run.run_id}\t{run.run_name}\t{run.status.value}\t{metrics}")


@experiments.command("get")
@URL_OPTION
@click.argument("run_id")
def get_run(url: str | None, run_id: str) -> None:
    """Show one run (params, latest metrics, tags) as JSON."""
    with _backend(url) as backend:
        _echo_json(backend.get_run(run_id))


@experiments.command("compare")
@URL_OPTION
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_runs(url: str | None, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Show every param and metric of the runs side by side ('-' where missing)."""
    with _backend(url) as backend:
        comparison = backend.compare_runs(list(run_ids))
    if as_json:
        _echo_json(comparison)
        return
    click.echo("\t".join(["name", *comparison.run_names]))
    rows: list[tuple[str, list[Any]]] = [
        *((f"params.{k}", v) for k, v in comparison.params.items()),
        *((f"metrics.{k}", v) for k, v in comparison.metrics.items()),
    ]
    for name, cells in rows:
        click.echo("\t".join([name, *("-" if cell is None else str(cell) for cell in cells)]))
