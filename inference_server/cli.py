"""``modelyard serve``: run the inference server, optionally as N worker processes.

With ``--workers N`` (default: one per available core) the parent supervises N worker
processes (``spawn``, so no gRPC state crosses a fork) that bind the same gRPC/HTTP ports with
SO_REUSEPORT; the kernel spreads connections across them. Worker k serves its metrics on
``--metrics-port + k``. Admin calls reaching any worker are applied on every worker through
the parent, and a worker that dies is restarted in the server's current state
(:mod:`inference_server.admin.supervisor`). SIGTERM (or SIGINT) makes every worker drain (stop
accepting, finish in-flight requests) and the command exits 0.

One settings object: the command loads :class:`modelyard.settings.Settings` (config file and
``MODELYARD_*`` variables), replaces the fields its flags name (``msgspec.structs.replace``;
``--max-message-bytes`` is ``server.max_request_bytes``, ``--model-control-mode``
``server.control_mode``, ``--poll-interval`` ``server.poll_interval_s``, a negative
``--http-port`` / ``--metrics-port`` turns that listener off), checks the result once more
(:func:`~modelyard.settings.validate_settings`) and hands that object unchanged to every
worker, each with its :class:`~inference_server.wiring.WorkerSeat`.

Each worker prints one machine-readable line on stdout once it listens, e.g.
``{"event": "listening", "worker": 0, "pid": 123, "grpc_port": 8001, "http_port": 8000,
"metrics_port": 8002}`` -- with port 0 this is how a caller learns the bound ports.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from inference_server.logs import configure_logging
from inference_server.wiring import WorkerSeat
from modelyard.settings import Settings, load_settings, validate_settings


def _default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def settle_heap(threshold: int) -> None:
    """Tune the garbage collector for serving, once the worker has started.

    Everything allocated so far (modules, protobuf descriptors, sessions) is permanent;
    freezing it keeps full collections short: c=64 p99 27-34 ms -> 17 ms (probe, 1 core).
    ``threshold``: allocations between young-generation passes (``server.gc_threshold``;
    0 keeps Python's 700).
    """
    gc.freeze()
    if threshold:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])


async def _serve(settings: Settings, seat: WorkerSeat | None) -> None:
    from inference_server.app import InferenceServer

    stop = asyncio.Event()
    server = InferenceServer(settings, seat=seat, on_admin_lost=stop.set)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    settle_heap(settings.server.gc_threshold)
    ready = {
        "event": "listening",
        "worker": seat.index if seat else 0,
        "pid": os.getpid(),
        "grpc_port": server.grpc_port,
        "http_port": server.http_port,
        "metrics_port": server.metrics_port,
    }
    # NOTE: one write() of the whole line: workers share stdout, and print() writes the text
    # and its newline separately when stdout is unbuffered (PYTHONUNBUFFERED), so two
    # workers' lines could interleave. A write below PIPE_BUF to a pipe is atomic.
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (json.dumps(ready) + "\n").encode())
    await stop.wait()
    await server.stop()


def run_worker(settings: Settings, seat: WorkerSeat | None) -> None:
    """Run one server process on uvloop until SIGTERM/SIGINT, then drain.

    ``seat`` is None for a lone process, else this worker's place among N.
    """
    import uvloop

    configure_logging(settings.logging.level, settings.logging.format)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(settings, seat))


def _run_workers(settings: Settings) -> int:
    """Supervise ``server.workers`` processes as one server (:mod:`~.admin.supervisor`)."""
    from inference_server.admin.repository_ops import initial_state
    from inference_server.admin.supervisor import Supervisor

    configure_logging(settings.logging.level, settings.logging.format)
    server = settings.server
    initial = {}
    if server.effective_control_mode != "poll":
        initial = initial_state(Path(server.model_repository), server.default_batching)
    supervisor = Supervisor(settings, server.workers, run_worker, initial)
    return asyncio.run(supervisor.run())


_SERVER_FLAGS = {
    "model_repository": "model_repository",
    "host": "host",
    "grpc_port": "grpc_port",
    "http_port": "http_port",
    "metrics_port": "metrics_port",
    "model_control_mode": "control_mode",
    "poll_interval": "poll_interval_s",
    "intra_op_threads": "intra_op_threads",
    "max_message_bytes": "max_request_bytes",
}
"""``modelyard serve`` flag -> the ``server`` setting it overrides."""


def _settings(options: dict[str, Any]) -> Settings:
    """The settings (config file and MODELYARD_* variables) with the flags replaced in.

    ``server.workers`` comes out resolved (0: one per core); a negative port flag is None
    (that listener is off).
    """
    settings = load_settings()
    server: dict[str, Any] = {
        field: options[flag] for flag, field in _SERVER_FLAGS.items() if options[flag] is not None
    }
    if "model_repository" in server:
        server["model_repository"] = str(server["model_repository"])
    for name in ("http_port", "metrics_port"):
        if server.get(name) is not None and server[name] < 0:
            server[name] = None
    server["workers"] = options["workers"] or settings.server.workers or _default_workers()
    logging_flags = {"level": options["log_level"], "format": options["log_format"]}
    settings = msgspec.structs.replace(
        settings,
        server=msgspec.structs.replace(settings.server, **server),
        logging=msgspec.structs.replace(
            settings.logging, **{k: v for k, v in logging_flags.items() if v is not None}
        ),
    )
    ports = (settings.server.grpc_port, settings.server.http_port, settings.server.metrics_port)
    if settings.server.workers > 1 and 0 in ports:
        raise click.UsageError("port 0 needs --workers 1 (workers must share fixed ports)")
    return validate_settings(settings)


@click.command("serve")
@click.option(
    "--model-repository",
    type=click.Path(file_okay=False, path_type=Path),
    help="Repository folder [settings: server.model_repository].",
)
@click.option("--host", help="Address to bind [server.host].")
@click.option("--grpc-port", type=int, help="gRPC port, 0 = any free [server.grpc_port: 8001].")
@click.option("--http-port", type=int, help="HTTP port, -1 disables [server.http_port: 8000].")
@click.option("--metrics-port", type=int, help="Metrics port, -1 disables [8002].")
@click.option("--workers", type=click.IntRange(min=1), help="Processes [default: one per core].")
@click.option(
    "--model-control-mode",
    type=click.Choice(["poll", "explicit", "none"]),
    help="poll (default), explicit (load/unload API only) or none.",
)
@click.option("--poll-interval", type=float, help="Seconds between repository scans [2.0].")
@click.option("--intra-op-threads", type=click.IntRange(min=1), help="ORT threads per session [1].")
@click.option("--max-message-bytes", type=click.IntRange(min=1024), help="Request size limit.")
@click.option("--log-level", help="debug, info, warning, error [logging.level].")
@click.option("--log-format", type=click.Choice(["json", "text"]), help="[logging.format].")
def serve(**options: Any) -> None:
    """Serve the ONNX models of a model repository over gRPC and HTTP (Open Inference Protocol).

    Flags override the settings (config/<env>.toml and MODELYARD_SERVER_* variables).
    """
    settings = _settings(options)
    if settings.server.workers == 1:
        run_worker(settings, None)
        return
    sys.exit(_run_workers(settings))
