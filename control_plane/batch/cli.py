"""``modelyard batch submit|status|cancel|resume|list``: batch prediction jobs from the shell.

Every command speaks the REST API: to ``--url``, or in-process over the local store
(:mod:`control_plane.cli_client`). ``submit`` and ``resume`` follow the job with a progress
bar (rows done of total, rows/s, ETA) until it ends; without ``--url`` the job process belongs
to this command, so it always follows (Ctrl-C cancels at a shard boundary; ``resume`` later
continues). The bar is tqdm's: already installed with Optuna, it draws on stderr and degrades
to plain lines when stderr is not a terminal.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click
import httpx
from tqdm import tqdm

from control_plane.cli_client import (
    TOKEN_OPTION,
    URL_OPTION,
    call,
    echo_json,
    request,
    run_with_client,
)
from modelyard.enums import ModelStage

FINAL = {"succeeded", "failed", "cancelled"}
_POLL_S = 0.5


async def follow(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """Draw the job's progress until it ends; return the final job."""
    job: dict[str, Any] = await call(client, "GET", f"/v1/batch/jobs/{job_id}")
    with tqdm(total=0, unit="rows", desc=job_id[:8], leave=True) as bar:
        while True:
            progress = job["progress"]
            bar.total = progress["rows_total"]
            bar.n = progress["rows_done"]
            bar.set_postfix_str(_postfix(progress))
            bar.refresh()
            if progress["state"] in FINAL:
                return job
            await asyncio.sleep(_POLL_S)
            job = await call(client, "GET", f"/v1/batch/jobs/{job_id}")


def _postfix(progress: dict[str, Any]) -> str:
    """The job's state, and while it runs its own rows/s and ETA."""
    if progress["state"] != "running":
        return str(progress["state"])
    eta = progress.get("eta_s")
    eta_text = "?" if eta is None else f"{eta:.0f}s"
    return f"running, {progress['rows_per_s']:.0f} rows/s, ETA {eta_text}"


async def _follow_or_cancel(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    try:
        return await follow(client, job_id)
    except asyncio.CancelledError:
        await call(client, "POST", f"/v1/batch/jobs/{job_id}/cancel")
        raise


def _finish(job: dict[str, Any]) -> None:
    echo_json(job)
    if job["progress"]["state"] != "succeeded":
        raise SystemExit(1)


@click.group("batch")
def batch() -> None:
    """Batch prediction jobs: score CSV/Parquet files into result shards."""


@batch.command("submit")
@URL_OPTION
@TOKEN_OPTION
@click.option("--model", required=True, help="Registered model name.")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Exact version.")
@click.option(
    "--stage",
    type=click.Choice([s.value for s in ModelStage]),
    default=None,
    help="Latest version in this stage (when --version is not given).",
)
@click.option("--input", "input_path", required=True, help="File or folder under the data root.")
@click.option("--output", required=True, help="New output folder under the data root.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None, help="Rows per shard.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes.")
@click.option("--id-column", "id_columns", multiple=True, help="Id column (repeatable).")
@click.option("--carry", "carry_columns", multiple=True, help="Column to copy through.")
@click.option("--format", "output_format", type=click.Choice(["parquet", "csv"]), default=None)
@click.option("--bad-rows", type=click.Choice(["fail", "errors_file"]), default=None)
@click.option("--no-wait", is_flag=True, help="With --url: print the job and return.")
def submit(
    url: str | None,
    token: str | None,
    no_wait: bool,
    model: str,
    version: int | None,
    stage: str | None,
    input_path: str,
    output: str,
    **options: Any,
) -> None:
    """Submit a job and follow its progress."""
    chosen = {k: v for k, v in options.items() if v not in (None, ())}
    body = {
        "model": model,
        "version": version,
        "stage": stage,
        "input": input_path,
        "output": output,
        "options": chosen,
    }
    body = {k: v for k, v in body.items() if v is not None}

    async def action(client: httpx.AsyncClient) -> dict[str, Any]:
        job: dict[str, Any] = await call(client, "POST", "/v1/batch/jobs", body=body)
        if no_wait and url:
            return job
        return await _follow_or_cancel(client, job["id"])

    job = run_with_client(url, token, action)
    if no_wait and url:
        echo_json(job)
        return
    _finish(job)


@batch.command("status")
@URL_OPTION
@TOKEN_OPTION
@click.argument("job_id")
@click.option("--follow", "follow_job", is_flag=True, help="Draw progress until the job ends.")
def status(url: str | None, token: str | None, job_id: str, follow_job: bool) -> None:
    """Print a job with its progress (rows done/total, rows/s, ETA, state)."""

    if follow_job:
        echo_json(run_with_client(url, token, lambda client: follow(client, job_id)))
        return
    echo_json(request(url, token, "GET", f"/v1/batch/jobs/{job_id}"))


@batch.command("list")
@URL_OPTION
@TOKEN_OPTION
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
def list_jobs(url: str | None, token: str | None, limit: int) -> None:
    """Print the newest jobs first."""
    echo_json(request(url, token, "GET", "/v1/batch/jobs", params={"limit": limit}))


@batch.command("cancel")
@URL_OPTION
@TOKEN_OPTION
@click.argument("job_id")
def cancel(url: str | None, token: str | None, job_id: str) -> None:
    """Stop a running job at its next shard boundary (needs the control plane that runs it)."""
    echo_json(request(url, token, "POST", f"/v1/batch/jobs/{job_id}/cancel"))


@batch.command("resume")
@URL_OPTION
@TOKEN_OPTION
@click.argument("job_id")
@click.option("--no-wait", is_flag=True, help="With --url: print the job and return.")
def resume(url: str | None, token: str | None, job_id: str, no_wait: bool) -> None:
    """Continue a failed, cancelled or interrupted job from its committed shards."""

    async def action(client: httpx.AsyncClient) -> dict[str, Any]:
        job: dict[str, Any] = await call(client, "POST", f"/v1/batch/jobs/{job_id}/resume")
        if no_wait and url:
            return job
        return await _follow_or_cancel(client, job_id)

    job = run_with_client(url, token, action)
    if no_wait and url:
        echo_json(job)
        return
    _finish(job)


__all__ = ["batch", "follow"]
