"""``modelyard retrain spec|trigger|status|list|resume``: retraining from the command line.

Every command speaks the REST API through :mod:`control_plane.cli_client` (``--url`` or the
in-process app over the local store). ``trigger --wait`` and ``status --follow`` show the run's
steps as they complete (a progress bar over the six steps) and end with the decision.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
import httpx
import msgspec

from control_plane.cli_client import (
    TOKEN_OPTION,
    URL_OPTION,
    call,
    echo_json,
    request,
    run_with_client,
)
from control_plane.retraining.models import STEPS, RetrainingRun, RunStatus
from modelyard.enums import TriggerType

TERMINAL = {RunStatus.PROMOTED, RunStatus.REJECTED, RunStatus.FAILED}


@click.group("retrain")
def retrain() -> None:
    """Retraining specs and runs (drift, performance, schedule or manual triggers)."""


@retrain.group("spec")
def spec() -> None:
    """How a model is retrained."""


@spec.command("set")
@click.argument("model")
@click.option("--file", "spec_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@URL_OPTION
@TOKEN_OPTION
def spec_set(model: str, spec_file: Path, url: str | None, token: str | None) -> None:
    """Set MODEL's retraining spec from a JSON file (see docs/retraining.md)."""
    try:
        body = json.loads(spec_file.read_text())
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"{spec_file} is not valid JSON: {error}") from None
    echo_json(request(url, token, "PUT", f"/v1/retraining/specs/{model}", body=body))


@spec.command("show")
@click.argument("model")
@URL_OPTION
@TOKEN_OPTION
def spec_show(model: str, url: str | None, token: str | None) -> None:
    """Print MODEL's retraining spec."""
    echo_json(request(url, token, "GET", f"/v1/retraining/specs/{model}"))


@retrain.command("trigger")
@click.argument("model")
@click.option("--reason", default="", help="Why (recorded with the run).")
@click.option(
    "--type",
    "trigger_type",
    type=click.Choice([t.value for t in TriggerType]),
    default=TriggerType.MANUAL.value,
    show_default=True,
)
@click.option("--wait", is_flag=True, help="Follow the run's steps until it ends.")
@URL_OPTION
@TOKEN_OPTION
def trigger(
    model: str, reason: str, trigger_type: str, wait: bool, url: str | None, token: str | None
) -> None:
    """Start a retraining of MODEL (or join its running one)."""
    body = {"model": model, "trigger_type": trigger_type, "reason": reason}

    async def start(client: httpx.AsyncClient) -> None:
        run = msgspec.convert(
            await call(client, "POST", "/v1/retraining/runs", body=body), RetrainingRun
        )
        click.echo(
            f"run {run.id} ({run.status.value}), triggered by {run.trigger.trigger_type.value}"
        )
        if wait:
            run = await _follow(client, run)
            _summary(run)

    run_with_client(url, token, start)


async def _follow(client: Any, run: RetrainingRun) -> RetrainingRun:
    with click.progressbar(length=len(STEPS), label=f"retraining {run.model}") as bar:
        while run.status not in TERMINAL:
            await asyncio.sleep(1.0)  # polling a run in another process; nothing to await here
            answer = await call(client, "GET", f"/v1/retraining/runs/{run.id}")
            run = msgspec.convert(answer, RetrainingRun)
            done = sum(1 for s in run.steps if s.status == "succeeded")
            bar.update(done - bar.pos)
    return run


def _summary(run: RetrainingRun) -> None:
    click.echo(f"run {run.id}: {run.status.value}")
    for step in run.steps:
        click.echo(f"  {step.name:<10} {step.status}" + (f"  {step.error}" if step.error else ""))
    if run.comparison is not None:
        click.echo(f"  candidate  {run.comparison.candidate}")
        if run.comparison.production_version is not None:
            click.echo(
                f"  production v{run.comparison.production_version} {run.comparison.production}"
            )
    if run.decision:
        click.echo(f"  decision   {run.decision}")
    if run.error:
        click.echo(f"  error      {run.error}")


@retrain.command("status")
@click.argument("run_id")
@click.option("--follow", is_flag=True, help="Follow the run's steps until it ends.")
@URL_OPTION
@TOKEN_OPTION
def status(run_id: str, follow: bool, url: str | None, token: str | None) -> None:
    """Show one run: steps, comparison, decision."""

    async def show(client: httpx.AsyncClient) -> None:
        run = msgspec.convert(
            await call(client, "GET", f"/v1/retraining/runs/{run_id}"), RetrainingRun
        )
        if follow:
            run = await _follow(client, run)
        _summary(run)

    run_with_client(url, token, show)


@retrain.command("list")
@click.option("--model", default=None, help="Only runs of this model.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@URL_OPTION
@TOKEN_OPTION
def list_runs(model: str | None, limit: int, url: str | None, token: str | None) -> None:
    """List runs, newest first."""
    params = {"model": model, "limit": limit}
    for raw in request(url, token, "GET", "/v1/retraining/runs", params=params):
        run = msgspec.convert(raw, RetrainingRun)
        click.echo(
            f"{run.id}  {run.model}  {run.status.value:<9} {run.trigger.trigger_type.value:<11} "
            f"{run.created_at.isoformat(timespec='seconds')}  {run.decision or run.error or ''}"
        )


@retrain.command("resume")
@click.argument("run_id")
@URL_OPTION
@TOKEN_OPTION
def resume(run_id: str, url: str | None, token: str | None) -> None:
    """Start a failed, resumable run again."""
    echo_json(request(url, token, "POST", f"/v1/retraining/runs/{run_id}/resume"))
