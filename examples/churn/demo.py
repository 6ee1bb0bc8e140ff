"""``modelyard demo``: the serving loop end to end on one machine, nothing to configure.

train -> convert -> register -> approve -> promote -> serve -> score:
1. run the churn pipeline in-process on the embedded stores (features, MLflow runs, Optuna,
   ONNX conversion with its fidelity check, registration with card and lineage);
2. start the control plane (subprocess, free port); as admin, issue a developer token for the
   pipeline and an approver token for a second principal;
3. over REST: the developer moves the version to Staging, the approver approves its card and
   promotes it to Production, which publishes it into the model repository;
4. start an inference server (subprocess, ``--workers`` processes sharing free ports) on the
   repository and wait for every worker to listen;
5. check that answers over gRPC and HTTP equal the native model's within the fidelity
   tolerance, then score traffic over both for a few seconds and print throughput and latency;
6. print where to look next.
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
from examples.churn.pipeline import PipelineOptions, PipelineResult, run_pipeline
from examples.churn.processes import (
    ProcessGroup,
    control_plane_url,
    free_port,
    free_ports,
    listening_worker,
    owned_processes,
)
from examples.churn.traffic import grpc_load, grpc_probabilities, http_load, http_probabilities
from modelyard.commands import settings_from_context
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
) -> dict[str, Any]:
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
        return promoted


def _start_server(group: ProcessGroup, repository: Path, workers: int) -> dict[str, int]:
    ports = {
        "grpc_port": free_port(),
        "http_port": free_port(),
        "metrics_port": free_ports(workers),
    }
    server = group.start(
        "inference-server",
        "serve",
        "--model-repository",
        str(repository),
        "--grpc-port",
        str(ports["grpc_port"]),
        "--http-port",
        str(ports["http_port"]),
        "--metrics-port",
        str(ports["metrics_port"]),
        "--workers",
        str(workers),
        "--model-control-mode",
        "poll",
    )
    for _ in range(workers):
        server.wait_for(listening_worker)
    return ports


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


def _where_next(settings: Settings, url: str, ports: dict[str, int], repository: Path) -> None:
    tracking = settings.tracking
    lines = {
        "control plane": f"{url}   (OpenAPI: {url}/schema, Swagger UI: {url}/schema/swagger)",
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
@click.option("--summary", type=click.Path(path_type=Path), help="write a JSON summary here")
def demo(
    rows: int,
    trials: int,
    seconds: float,
    concurrency: int,
    workers: int,
    keep_running: bool,
    summary: Path | None,
) -> None:
    """Train, convert, register, approve, promote, serve and score a churn model."""
    settings = settings_from_context()
    steps = Steps(total=6)
    steps.step("training pipeline: data, features, MLflow runs, Optuna, ONNX, registration")
    result = asyncio.run(_train(settings, PipelineOptions(rows=rows, trials=trials), steps))
    repository = Path(settings.registry.model_repository).resolve()
    group = ProcessGroup(Path.cwd(), dict(os.environ), Path(".modelyard") / "demo-logs")
    with owned_processes(group, keep_running=keep_running):
        steps.step("control plane")
        url = group.start("control-plane", "control-plane", "--port", "0").wait_for(
            control_plane_url
        )
        steps.say(f"listening on {url}")
        steps.step("approval by a second principal, promotion to Production")
        promoted = _approve_and_promote(url, settings, result, steps)
        steps.step(f"inference server ({workers} workers)")
        ports = _start_server(group, repository, workers)
        steps.say(f"gRPC :{ports['grpc_port']}, HTTP :{ports['http_port']}; serving {repository}")
        steps.step("scoring traffic over gRPC and HTTP")
        scored = asyncio.run(_score(ports, result, seconds, concurrency, steps))
        steps.step("where to look next")
        _where_next(settings, url, ports, repository)
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
                        "winner": result.winner,
                        "auc": result.auc,
                        "run_id": result.run_id,
                        "native_model_path": str(result.native_model_path),
                        "control_plane_url": url,
                        "ports": ports,
                        "repository": str(repository),
                        "pids": [p.process.pid for p in group.processes],
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
