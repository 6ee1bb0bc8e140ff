"""``modelyard serve``: run the inference server, optionally as N worker processes.

With ``--workers N`` (default: one per available core) the parent starts N worker processes
(``spawn``, so no gRPC state crosses a fork) that bind the same gRPC/HTTP ports with
SO_REUSEPORT; the kernel spreads connections across them. Worker k serves its metrics on
``--metrics-port + k``. SIGTERM (or SIGINT) makes every worker drain (stop accepting, finish
in-flight requests) and the command exits 0.

Each worker prints one machine-readable line on stdout once it listens, e.g.
``{"event": "listening", "worker": 0, "pid": 123, "grpc_port": 8001, "http_port": 8000,
"metrics_port": 8002}`` -- with port 0 this is how a caller learns the bound ports.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sys
from pathlib import Path

import click

from inference_server.logs import configure_logging
from inference_server.settings import ServerSettings


def _default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def _serve(settings: ServerSettings, worker: int) -> None:
    from inference_server.app import InferenceServer

    server = InferenceServer(settings, worker_index=worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    ready = {
        "event": "listening",
        "worker": worker,
        "pid": os.getpid(),
        "grpc_port": server.grpc_port,
        "http_port": server.http_port,
        "metrics_port": server.metrics_port,
    }
    print(json.dumps(ready), flush=True)
    await stop.wait()
    await server.stop()


def run_worker(settings: ServerSettings, worker: int, log_level: str) -> None:
    """Run one server process on uvloop until SIGTERM/SIGINT, then drain."""
    import uvloop

    configure_logging(log_level)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings, worker))


def _run_workers(settings: ServerSettings, workers: int, log_level: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=run_worker, args=(settings, i, log_level), name=f"modelyard-worker-{i}")
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    return 0 if all(p.exitcode == 0 for p in procs) else 1


@click.command("serve")
@click.option("--model-repository", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--grpc-port", default=8001, show_default=True, type=int)
@click.option("--http-port", default=8000, show_default=True, type=int, help="-1 disables HTTP.")
@click.option("--metrics-port", default=8002, show_default=True, type=int, help="-1 disables.")
@click.option("--workers", default=None, type=click.IntRange(min=1), help="Default: one per core.")
@click.option(
    "--model-control-mode",
    type=click.Choice(["poll", "explicit", "none"]),
    default="poll",
    show_default=True,
)
@click.option(
    "--poll-interval",
    default=2.0,
    show_default=True,
    type=float,
    help="Seconds between repository scans (poll mode).",
)
@click.option("--intra-op-threads", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--max-message-bytes", default=64 * 1024 * 1024, show_default=True, type=int)
@click.option("--log-level", default="info", show_default=True)
def serve(
    model_repository: Path,
    host: str,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
    workers: int | None,
    model_control_mode: str,
    poll_interval: float,
    intra_op_threads: int,
    max_message_bytes: int,
    log_level: str,
) -> None:
    """Serve the ONNX models of a model repository over gRPC and HTTP (Open Inference Protocol)."""
    count = workers or _default_workers()
    if count > 1 and 0 in (grpc_port, http_port, metrics_port):
        raise click.UsageError("port 0 needs --workers 1 (workers must share fixed ports)")
    settings = ServerSettings(
        model_repository=model_repository,
        host=host,
        grpc_port=grpc_port,
        http_port=None if http_port < 0 else http_port,
        metrics_port=None if metrics_port < 0 else metrics_port,
        control_mode=model_control_mode,  # type: ignore[arg-type]
        poll_interval_s=poll_interval,
        intra_op_num_threads=intra_op_threads,
        max_message_bytes=max_message_bytes,
        reuse_port=count > 1,
    )
    if count == 1:
        run_worker(settings, 0, log_level)
        return
    sys.exit(_run_workers(settings, count, log_level))
