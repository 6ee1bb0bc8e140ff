"""``modelyard demo``: the platform's loop end to end on one machine, nothing to configure.

1. the churn pipeline in-process on the embedded stores: data, features, MLflow runs, Optuna,
   ONNX conversion with its fidelity check (precision chosen automatically), registration of
   the winner and the runner-up with cards and lineage;
2. an inference server (``--workers`` processes that behave as one) and the control plane
   (subprocesses, free ports), sharing the server's admin token and the platform database;
3. over REST, as different principals: the winner to Staging, its card approved by a second
   principal and promoted to Production; the runner-up to Staging (both published);
4. answers over gRPC and HTTP checked against the native model, then traffic over both;
5. an A/B test of the two versions with keyed traffic and fed-back outcomes, and its
   recommendation (:mod:`examples.churn.experiment`);
6. traffic from a shifted population → a drift report from the servers' sketches → an alert
   delivered to a local webhook (signature checked) → a retraining run triggered by the alert →
   the candidate evaluated against Production and promoted to Staging (or rejected, with the
   reason) → loaded by every server worker (:mod:`examples.churn.monitoring_step`);
7. a 100,000-row batch job with a progress bar, killed once and resumed, every row written
   exactly once (:mod:`examples.churn.batch_step`);
8. where to look next.
Every process is stopped at the end, on failure and on Ctrl-C, unless ``--keep-running``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import click
import httpx
import joblib
import numpy as np

from control_plane.app import ControlPlaneServices
from control_plane.security.models import Principal
from examples.churn.batch_step import run_batch
from examples.churn.experiment import run_ab_test
from examples.churn.features import engineer
from examples.churn.monitoring_step import run_monitoring_loop
from examples.churn.pipeline import PipelineOptions, PipelineResult, run_pipeline
from examples.churn.processes import ProcessGroup, owned_processes
from examples.churn.stack import SKETCH_WINDOW_S, Stack, start_stack
from examples.churn.traffic import grpc_load, grpc_probabilities, http_load, http_probabilities
from modelyard.commands import settings_from_context
from modelyard.datasets import generate_churn
from modelyard.enums import Role
from modelyard.settings import Settings

PIPELINE_PRINCIPAL = "churn-pipeline"
APPROVER = "demo-approver"


class Steps:
    """Numbered, timed progress lines."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0
        self.started = time.monotonic()

    def step(self, title: str) -> None:
        self.number += 1
        click.secho(f"\n[{self.number}/{self.total}] {title}", bold=True)

    def say(self, text: str) -> None:
        click.echo(f"    {text}  ({time.monotonic() - self.started:5.1f} s)")


async def _train(settings: Settings, options: PipelineOptions, steps: Steps) -> PipelineResult:
    services = await ControlPlaneServices.open(settings)
    try:
        if services.admin_token_path is not None:
            steps.say(f"first start: admin token written to {services.admin_token_path}")
        principal = Principal(name=PIPELINE_PRINCIPAL, role=Role.DEVELOPER, token_id="in-process")
        return await run_pipeline(services, principal, options, steps.say)
    finally:
        await services.close()


def _issue_token(client: httpx.Client, admin: str, name: str, role: Role) -> str:
    answer = client.post(
        "/v1/tokens",
        json={"principal": name, "role": role.value, "description": "modelyard demo"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    return str(_checked(answer)["token"])


def _checked(answer: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful answer; a failed one stops the demo with its error."""
    if answer.is_error:
        raise click.ClickException(
            f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}: "
            f"{answer.text}"
        )
    return dict(answer.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _approve_and_promote(
    url: str, settings: Settings, result: PipelineResult, steps: Steps
) -> tuple[dict[str, Any], dict[str, str]]:
    admin = Path(settings.control_plane.admin_token_file).read_text().strip()
    model = f"/v1/models/{result.model.name}/versions/{result.model.version}"
    with httpx.Client(base_url=url, timeout=60) as client:
        developer = _bearer(_issue_token(client, admin, PIPELINE_PRINCIPAL, Role.DEVELOPER))
        approver = _bearer(_issue_token(client, admin, APPROVER, Role.APPROVER))
        steps.say(f"tokens issued: {PIPELINE_PRINCIPAL} (developer), {APPROVER} (approver)")
        _checked(
            client.post(
                f"{model}/transitions",
                json={"stage": "Staging", "reason": "demo"},
                headers=developer,
            )
        )
        steps.say(f"{PIPELINE_PRINCIPAL} moved version {result.model.version} to Staging")
        card = _checked(client.get(f"{model}/card", headers=approver))
        review = {
            "decision": "approved",
            "reason": "metrics and card reviewed",
            "revision": card["revision"],
        }
        _checked(client.post(f"{model}/card/reviews", json=review, headers=approver))
        steps.say(f"{APPROVER} approved card revision {card['revision']}")
        promoted = _checked(
            client.post(
                f"{model}/transitions",
                json={"stage": "Production", "reason": "demo"},
                headers=approver,
            )
        )
        steps.say(f"{APPROVER} promoted version {result.model.version} to Production (published)")
        if result.challenger is not None:
            challenger = f"/v1/models/{result.challenger.name}/versions/{result.challenger.version}"
            body = {"stage": "Staging", "reason": "demo: A/B candidate"}
            _checked(client.post(f"{challenger}/transitions", json=body, headers=developer))
            steps.say(f"version {result.challenger.version} (runner-up) moved to Staging")
        return promoted, developer


def _load_everywhere(stack: Stack, model: str) -> int:
    """Ask the server to load what the repository now holds; every worker has when it returns."""
    with httpx.Client(base_url=stack.server_http, headers=stack.server_admin, timeout=120) as c:
        return int(_checked(c.post(f"/v2/repository/models/{model}/load"))["workers_applied"])


async def _score(
    ports: dict[str, int], result: PipelineResult, seconds: float, concurrency: int, steps: Steps
) -> dict[str, Any]:
    grpc_address = f"127.0.0.1:{ports['grpc_port']}"
    http_url = f"http://127.0.0.1:{ports['http_port']}"
    name = result.model.name
    rows = result.validation_features.to_numpy(dtype=np.float32)[:500]
    native = joblib.load(result.native_model_path).predict_proba(
        result.validation_features.iloc[:500].astype(np.float32)
    )
    over_grpc = await grpc_probabilities(grpc_address, name, rows)
    over_http = await http_probabilities(http_url, name, rows)
    agreement = {
        "grpc_max_abs_diff": float(np.max(np.abs(over_grpc - native))),
        "http_max_abs_diff": float(np.max(np.abs(over_http - native))),
        "tolerance": result.conversion.fidelity.tolerances.probability_atol,
    }
    steps.say(
        f"served vs native on {len(rows)} rows: max |Δp| "
        f"gRPC {agreement['grpc_max_abs_diff']:.2e}, HTTP {agreement['http_max_abs_diff']:.2e} "
        f"(tolerance {agreement['tolerance']:.0e})"
    )
    loads = [
        await grpc_load(grpc_address, name, rows, seconds, concurrency),
        await http_load(http_url, name, rows, seconds, concurrency),
    ]
    for stats in loads:
        steps.say(stats.line())
    return {
        "agreement": agreement,
        "load": [vars(stats) | {"throughput": stats.throughput} for stats in loads],
    }


async def _ab_test(
    stack: Stack,
    developer: dict[str, str],
    result: PipelineResult,
    requests: int,
    steps: Steps,
) -> dict[str, object]:
    """Keyed traffic from customers the models never saw, and their true outcomes."""
    assert result.challenger is not None
    traffic = generate_churn(requests, seed=1001)
    return await run_ab_test(
        control_plane=stack.control_plane,
        developer=developer,
        server_http=stack.server_http,
        server_admin=stack.server_admin,
        model=result.model.name,
        control=result.model.version,
        treatment=result.challenger.version,
        customers=traffic.frame,
        features=engineer(traffic.frame),
        labels=traffic.labels,
        say=steps.say,
    )


def _monitoring(
    stack: Stack,
    settings: Settings,
    developer: dict[str, str],
    result: PipelineResult,
    requests: int,
    steps: Steps,
) -> dict[str, object]:
    """Drifted traffic through the whole monitoring and retraining loop."""
    admin = Path(settings.control_plane.admin_token_file).read_text().strip()
    drifted = generate_churn(requests, seed=3003, drift=1.0)
    return run_monitoring_loop(
        control_plane=stack.control_plane,
        admin=_bearer(admin),
        developer=developer,
        server_http=stack.server_http,
        server_admin=stack.server_admin,
        model=result.model.name,
        version=result.model.version,
        drifted=engineer(drifted.frame),
        sketch_window_s=SKETCH_WINDOW_S,
        say=steps.say,
    )


def _where_next(
    settings: Settings,
    url: str,
    ports: dict[str, int],
    repository: Path,
    pages: dict[str, str],
) -> None:
    tracking = settings.tracking
    lines = {
        "control plane": f"{url}   (OpenAPI: {url}/schema, Swagger UI: {url}/schema/swagger)",
        **pages,
        "prediction log": f"{url}/v1/predictions?model=churn   (any token; table prediction_log)",
        "audit log": f"{url}/v1/audit   (admin token: {settings.control_plane.admin_token_file})",
        "MLflow UI": f"mlflow ui --backend-store-uri {tracking.uri} "
        f"--default-artifact-root {tracking.artifact_root}",
        "model repository": str(repository),
        "inference server": f"gRPC 127.0.0.1:{ports['grpc_port']}, "
        f"HTTP http://127.0.0.1:{ports['http_port']}/v2, "
        f"metrics http://127.0.0.1:{ports['metrics_port']}/metrics",
        "demo logs": ".modelyard/demo-logs/",
    }
    for label, text in lines.items():
        click.echo(f"    {label:<18} {text}")


@click.command("demo")
@click.option("--rows", default=20_000, show_default=True, help="customers to generate")
@click.option("--trials", default=8, show_default=True, help="Optuna trials over LightGBM")
@click.option("--seconds", default=4.0, show_default=True, help="traffic per protocol")
@click.option("--concurrency", default=8, show_default=True, help="concurrent clients")
@click.option("--workers", default=2, show_default=True, help="inference server processes")
@click.option("--keep-running", is_flag=True, help="leave the services up afterwards")
@click.option("--ab-requests", default=4000, show_default=True, help="keyed A/B requests")
@click.option(
    "--drift-requests", default=3000, show_default=True, help="requests of the shifted population"
)
@click.option("--batch-rows", default=100_000, show_default=True, help="rows of the batch job")
@click.option("--summary", type=click.Path(path_type=Path), help="write a JSON summary here")
def demo(
    rows: int,
    trials: int,
    seconds: float,
    concurrency: int,
    workers: int,
    keep_running: bool,
    ab_requests: int,
    drift_requests: int,
    batch_rows: int,
    summary: Path | None,
) -> None:
    """Train, register, approve, promote, serve, score and A/B-test a churn model."""
    settings = settings_from_context()
    steps = Steps(total=8)
    steps.step("training pipeline: data, features, MLflow runs, Optuna, ONNX, registration")
    options = PipelineOptions(rows=rows, trials=trials, challenger=True)
    result = asyncio.run(_train(settings, options, steps))
    repository = Path(settings.registry.model_repository).resolve()
    group = ProcessGroup(Path.cwd(), dict(os.environ), Path(".modelyard") / "demo-logs")
    with owned_processes(group, keep_running=keep_running):
        steps.step(f"inference server ({workers} workers) and control plane")
        stack = start_stack(group, repository, workers)
        ports = stack.ports()
        steps.say(f"gRPC :{stack.grpc_port}, HTTP :{stack.http_port}; serving {repository}")
        steps.say(f"control plane {stack.control_plane}")
        steps.step("approval by a second principal, promotion to Production")
        promoted, developer = _approve_and_promote(stack.control_plane, settings, result, steps)
        loaded = _load_everywhere(stack, result.model.name)
        steps.say(f"published versions loaded by {loaded} of {workers} workers")
        steps.step("scoring traffic over gRPC and HTTP")
        scored = asyncio.run(_score(ports, result, seconds, concurrency, steps))
        experiment: dict[str, object] = {}
        if result.challenger is not None:
            steps.step("A/B test: Production vs runner-up, keyed traffic, outcomes")
            experiment = asyncio.run(_ab_test(stack, developer, result, ab_requests, steps))
        steps.step("drift → alert → notification → retraining → hot-load")
        monitored = _monitoring(stack, settings, developer, result, drift_requests, steps)
        steps.step(f"batch job: {batch_rows:,} rows, killed once and resumed")
        batch = run_batch(
            control_plane=stack.control_plane,
            developer=developer,
            data_root=Path(settings.batch.data_root).resolve(),
            model=result.model.name,
            rows=batch_rows,
            say=steps.say,
        )
        steps.step("where to look next")
        pages = {
            "A/B test page": str(experiment.get("page", "-")),
            "drift report page": str(monitored.get("report_page", "-")),
        }
        _where_next(settings, stack.control_plane, ports, repository, pages)
        if summary is not None:
            summary.write_text(
                json.dumps(
                    {
                        "model": {
                            "name": result.model.name,
                            "version": result.model.version,
                            "stage": promoted["stage"],
                            "registered_by": result.model.created_by,
                        },
                        "challenger": None
                        if result.challenger is None
                        else result.challenger.version,
                        "winner": result.winner,
                        "auc": result.auc,
                        "run_id": result.run_id,
                        "native_model_path": str(result.native_model_path),
                        "control_plane_url": stack.control_plane,
                        "ports": ports,
                        "repository": str(repository),
                        "pids": [p.process.pid for p in group.processes],
                        "ab_test": experiment,
                        "monitoring": monitored,
                        "batch": batch,
                    }
                    | scored,
                    indent=2,
                )
            )
        if keep_running:
            click.echo(
                "\n    services left running; stop them with: kill "
                + " ".join(str(p.process.pid) for p in group.processes)
            )
