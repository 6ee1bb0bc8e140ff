"""Seldon MLServer 1.7.1 with its LightGBM runtime, in its own virtualenv.

MLServer pins conflict with ours (protobuf<7, fastapi<0.116) and it fails to load models with
uvloop>=0.22, so the harness installs it into ``<work>/mlserver-venv`` once. Variants:

- ``mlserver-default``: as installed (one parallel inference worker: requests travel to a
  worker process and back).
- ``mlserver-tuned``: ``parallel_workers: 0`` (inference in the server process).
- ``mlserver-tuned-batching``: tuned plus adaptive batching (64 rows / 1 ms).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.contenders import (
    READY_TIMEOUT_S,
    V2_INFER_PATH,
    Contender,
    Context,
    Endpoint,
    Starter,
)
from benchmarks.processes import (
    ContenderUnavailable,
    ServerProcess,
    await_ready,
    free_port,
    on_fresh_ports,
    pin,
    start_server,
)
from benchmarks.reference import MODEL_NAME

REQUIREMENTS = (
    "mlserver==1.7.1",
    "mlserver-lightgbm==1.7.1",
    "fastapi<0.116",
    "protobuf<7",
    "uvloop<0.22",
)


def ensure_mlserver(work_dir: Path) -> Path:
    """Install MLServer into ``work_dir/mlserver-venv`` unless it is there; return its CLI.

    Raises:
        ContenderUnavailable: the installation failed (the pip log tail says why).
    """
    venv = work_dir / "mlserver-venv"
    cli = venv / "bin" / "mlserver"
    stamp = venv / "requirements.txt"
    if cli.exists() and stamp.exists() and stamp.read_text() == "\n".join(REQUIREMENTS):
        return cli
    print(f"installing MLServer into {venv} (once)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", *REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise ContenderUnavailable(f"MLServer install failed: {done.stderr[-1500:]}")
    stamp.write_text("\n".join(REQUIREMENTS))
    return cli


def write_repository(
    ctx: Context, name: str, settings: dict[str, Any], model_settings: dict[str, Any]
) -> Path:
    """Write an MLServer model repository with ``settings.json`` for one variant."""
    root = ctx.work_dir / "mlserver" / name
    shutil.rmtree(root, ignore_errors=True)
    model_dir = root / MODEL_NAME
    model_dir.mkdir(parents=True)
    shutil.copyfile(ctx.files.lightgbm, model_dir / "model.txt")
    model = {
        "name": MODEL_NAME,
        "implementation": "mlserver_lightgbm.LightGBMModel",
        "parameters": {"uri": "./model.txt", "version": "1"},
        **model_settings,
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model, indent=2))
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    return root


def _starter(name: str, tuned: dict[str, Any], model_settings: dict[str, Any]) -> Starter:
    def start(ctx: Context) -> ServerProcess:
        return on_fresh_ports(lambda: start_once(ctx))

    def start_once(ctx: Context) -> ServerProcess:
        cli = ensure_mlserver(ctx.work_dir)
        http, grpc_port, metrics = free_port(), free_port(), free_port()
        settings = {
            "host": "127.0.0.1",
            "http_port": http,
            "grpc_port": grpc_port,
            "metrics_port": metrics,
            **tuned,
        }
        root = write_repository(ctx, name, settings, model_settings)
        server = start_server(
            name, [*pin(ctx.server_cpus), str(cli), "start", str(root)], ctx.log(name), cwd=root
        )
        server.ports.update(http=http, grpc=grpc_port)
        try:
            await_ready(
                server,
                READY_TIMEOUT_S * 2,
                http_urls=(f"http://127.0.0.1:{http}/v2/models/{MODEL_NAME}/ready",),
                grpc_targets=(f"127.0.0.1:{grpc_port}",),
            )
        except BaseException:
            server.stop()
            raise
        return server

    return start


def mlserver_contenders() -> list[Contender]:
    """The MLServer variants."""
    grpc = Endpoint("grpc", "gRPC", open_loop=True)
    rest = Endpoint("http", "REST V2", path=V2_INFER_PATH)
    batching = {"max_batch_size": 64, "max_batch_time": 0.001}
    return [
        Contender(
            name="mlserver-default",
            family="mlserver",
            description="MLServer 1.7.1 + mlserver-lightgbm, settings as installed",
            endpoints=(grpc, rest),
            start=_starter("mlserver-default", {}, {}),
        ),
        Contender(
            name="mlserver-tuned",
            family="mlserver",
            description="MLServer 1.7.1, parallel_workers: 0 (inference in-process)",
            endpoints=(Endpoint("grpc", "gRPC", open_loop=True, big_batch=True), rest),
            start=_starter("mlserver-tuned", {"parallel_workers": 0}, {}),
        ),
        Contender(
            name="mlserver-tuned-batching",
            family="mlserver",
            description="MLServer 1.7.1, parallel_workers: 0, adaptive batching 64 rows / 1 ms",
            endpoints=(grpc, rest),
            start=_starter("mlserver-tuned-batching", {"parallel_workers": 0}, batching),
            concurrencies=(64,),
        ),
    ]
