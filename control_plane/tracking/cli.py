"""``modelyard experiments``: list experiments, search, show and compare runs.

Every command speaks the tracking REST API (:mod:`control_plane.cli_client`): of a running
control plane with ``--url``, or in-process over the MLflow store of the settings. Errors (a bad
filter, an unknown run) end the command with one line, exit 2.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
import msgspec

from control_plane.cli_client import URL_OPTION, echo_json, request
from control_plane.tracking.models import Experiment, Run, RunComparison


def _get(url: str | None, path: str, params: dict[str, Any] | None = None) -> Any:
    return request(url, None, "GET", path, params=params)


@click.group("experiments")
def experiments() -> None:
    """Experiments and runs in the MLflow tracking store."""


@experiments.command("list")
@URL_OPTION
def list_experiments(url: str | None) -> None:
    """List the active experiments."""
    found = msgspec.convert(_get(url, "/v1/experiments"), list[Experiment])
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
    params = {
        "experiment": list(names),
        "filter": filter_string,
        "order_by": list(order_by),
        "max_results": max_results,
    }
    runs = msgspec.convert(_get(url, "/v1/runs", params), list[Run])
    if as_json:
        echo_json(runs)
        return
    for run in runs:
        metrics = " ".join(f"{key}={value:.6g}" for key, value in sorted(run.metrics.items()))
        click.echo(f"{run.run_id}\t{run.run_name}\t{run.status.value}\t{metrics}")


@experiments.command("get")
@URL_OPTION
@click.argument("run_id")
def get_run(url: str | None, run_id: str) -> None:
    """Show one run (params, latest metrics, tags) as JSON."""
    echo_json(_get(url, f"/v1/runs/{quote(run_id, safe='')}"))


@experiments.command("compare")
@URL_OPTION
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_runs(url: str | None, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Show every param and metric of the runs side by side ('-' where missing)."""
    answer = _get(url, "/v1/runs/compare", {"run_id": list(run_ids)})
    comparison = msgspec.convert(answer, RunComparison)
    if as_json:
        echo_json(comparison)
        return
    click.echo("\t".join(["name", *comparison.run_names]))
    rows: list[tuple[str, list[Any]]] = [
        *((f"params.{k}", v) for k, v in comparison.params.items()),
        *((f"metrics.{k}", v) for k, v in comparison.metrics.items()),
    ]
    for name, cells in rows:
        click.echo("\t".join([name, *("-" if cell is None else str(cell) for cell in cells)]))
