"""``modelyard tune``: tune a model's hyperparameters locally or as a control-plane job.

``tune run`` runs a study in this process with a progress bar (``--url`` starts a job on a
control plane instead and follows its progress). Several ``tune run`` processes given the same
``--study`` and a PostgreSQL ``--storage`` share one study; create it first with
``tune create`` so they also share one MLflow run. ``tune best`` prints the best
configuration of a stored study.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import click
import httpx
import msgspec

from control_plane.cli_client import call, run_with_client
from control_plane.tuning.spaces import MODEL_KINDS, ParamSpec
from modelyard.commands import settings_from_context
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from control_plane.tuning.models import Progress
    from control_plane.tuning.tuner import HyperparameterTuner

_SPACE_DECODER = msgspec.json.Decoder(dict[str, ParamSpec | None])
TERMINAL = ("succeeded", "failed", "cancelled")


def _space(text: str | None) -> dict[str, ParamSpec | None] | None:
    if text is None:
        return None
    try:
        return _SPACE_DECODER.decode(text)
    except msgspec.DecodeError as error:
        raise InvalidArgument(f"--space is not a valid search space: {error}") from None


def _tuner(options: dict[str, Any], *, tracking: bool = True) -> HyperparameterTuner:
    import optuna

    from control_plane.tracking.tracker import ExperimentTracker
    from control_plane.tuning.tuner import HyperparameterTuner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = settings_from_context()
    storage = options["storage"] if options["storage"] is not None else settings.tuning.storage
    return HyperparameterTuner(
        options["model"],
        space=_space(options["space"]),
        replace_space=options["replace_space"],
        study_name=options["study"],
        storage=storage,
        direction="minimize",
        seed=options["seed"],
        tracker=ExperimentTracker.from_settings(settings.tracking) if tracking else None,
        experiment=options["experiment"],
    )


def study_options(command: Any) -> Any:
    """The options that identify a study and its search space."""
    decorators = [
        click.option("--model", type=click.Choice(MODEL_KINDS), required=True),
        click.option("--study", default=None, help="Study name (shared by workers)."),
        click.option("--storage", default=None, help="Optuna storage URL (PostgreSQL)."),
        click.option("--space", default=None, help='JSON overrides: {"C": {"type": "float", ...}}'),
        click.option("--replace-space", is_flag=True, help="Tune only --space."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--experiment", default="tuning", show_default=True),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@click.group("tune")
def tune() -> None:
    """Tune hyperparameters with Optuna; every trial is logged to MLflow."""


@tune.command("create")
@study_options
def create(**options: Any) -> None:
    """Create a shared study and its MLflow run, for several `tune run` workers."""
    tuner = _tuner(options)
    click.echo(f"study {tuner.study_name} (MLflow run {tuner.study_run_id})")


@tune.command("run")
@study_options
@click.option("--dataset", default="sklearn:breast_cancer", show_default=True)
@click.option("--target", default=None, help="Label column of a CSV/Parquet dataset.")
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--url", default=None, help="Run as a job on this control plane.")
@click.option(
    "--token",
    default=None,
    help="API token for --url (default: control_plane.token / MODELYARD_CONTROL_PLANE_TOKEN).",
)
def run(**options: Any) -> None:
    """Run trials (in this process, or as a control-plane job) with a progress bar."""
    if options["url"] is not None:
        _run_remote(options)
        return
    from control_plane.tuning.datasets import load_dataset
    from control_plane.tuning.estimators import HoldoutObjective

    tuner = _tuner(options)
    features, labels = load_dataset(options["dataset"], options["target"])
    objective = HoldoutObjective(options["model"], features, labels, seed=options["seed"])
    with click.progressbar(length=options["trials"], label=f"study {tuner.study_name}") as bar:

        def advance(progress: Progress) -> None:
            bar.update(progress.finished - bar.pos)

        done = tuner.optimize(
            objective, n_trials=options["trials"], n_jobs=options["jobs"], on_progress=advance
        )
    click.echo(
        f"trials: {done.completed} completed, {done.pruned} pruned, {done.failed} failed; "
        f"MLflow run {tuner.study_run_id}"
    )
    click.echo(json.dumps(msgspec.to_builtins(tuner.best_configuration())))


@tune.command("best")
@study_options
def best(**options: Any) -> None:
    """Print the best configuration of a stored study as JSON."""
    if options["study"] is None:
        raise InvalidArgument("--study is required to read a stored study")
    tuner = _tuner(options, tracking=False)
    click.echo(json.dumps(msgspec.to_builtins(tuner.best_configuration())))


def _run_remote(options: dict[str, Any]) -> None:
    run_with_client(
        options["url"], options["token"], lambda client: _follow_remote_job(client, options)
    )


async def _follow_remote_job(client: httpx.AsyncClient, options: dict[str, Any]) -> None:
    from control_plane.tuning.models import BestConfiguration, TuningJob

    body: dict[str, Any] = {
        "model": options["model"],
        "dataset": options["dataset"],
        "target": options["target"],
        "n_trials": options["trials"],
        "n_jobs": options["jobs"],
        "seed": options["seed"],
        "study_name": options["study"],
        "experiment": options["experiment"],
        "replace_space": options["replace_space"],
        "space": json.loads(options["space"]) if options["space"] else {},
    }
    job = msgspec.convert(await call(client, "POST", "/v1/tuning/jobs", body=body), TuningJob)
    with click.progressbar(length=job.n_trials, label=f"job {job.id}") as bar:
        while job.status.value not in TERMINAL:
            await asyncio.sleep(0.5)  # polling a remote job; nothing local to wait on
            answer = await call(client, "GET", f"/v1/tuning/jobs/{job.id}")
            job = msgspec.convert(answer, TuningJob)
            bar.update(job.trials_done - bar.pos)
    click.echo(f"job {job.id}: {job.status.value}" + (f" ({job.error})" if job.error else ""))
    if job.best_value is not None:
        answer = await call(client, "GET", f"/v1/tuning/jobs/{job.id}/best")
        click.echo(json.dumps(msgspec.to_builtins(msgspec.convert(answer, BestConfiguration))))
