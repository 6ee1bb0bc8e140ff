"""What the harness runs: each contender's server command, endpoints and points.

A contender is started by ``start`` (pinned, on free ports, awaited ready) and measured on each
of its endpoints: closed loop at the configured concurrencies, optionally an open-loop search
for the rate it sustains with p99 under the SLA, and optionally 512-row requests. ``limit`` is
special: it has no server; the harness times the model in-process instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from benchmarks.processes import (
    ServerProcess,
    await_port_file,
    await_ready,
    pin,
    start_server,
)
from benchmarks.reference import MODEL_NAME, ReferenceFiles, build_reference, build_rows

Protocol = Literal["grpc", "http"]
READY_TIMEOUT_S = 60.0
V2_INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"


@dataclass(frozen=True)
class Endpoint:
    """One way of calling a contender.

    Attributes:
        protocol: "grpc" (ModelInfer, raw tensors) or "http" (POST JSON).
        label: how the table names it ("gRPC", "REST V2", "/predict").
        path: the HTTP path (HTTP only).
        body: "v2" (Open Inference Protocol JSON) or "predict" (a bare list of features).
        open_loop: search the rate sustained with p99 under the SLA on this endpoint.
        big_batch: also measure 512-row requests (gRPC only).
        perf_analyzer: the server answers Triton's ModelConfig, so perf_analyzer can drive it.
        concurrencies: closed-loop concurrencies of this endpoint (default: the contender's).
        stream: gRPC ModelStreamInfer on one stream (concurrency = requests in flight).
        rates: open-loop arrival rates (req/s) measured at fixed points, so that two
            contenders can be compared at the same rate (p99 at a rate, not only the rate
            each sustains).
    """

    protocol: Protocol
    label: str
    path: str = ""
    body: str = "v2"
    open_loop: bool = False
    big_batch: bool = False
    perf_analyzer: bool = False
    concurrencies: tuple[int, ...] | None = None
    stream: bool = False
    rates: tuple[float, ...] = ()


@dataclass
class Context:
    """What contenders need to start: the work dir, model files and interpreters."""

    work_dir: Path
    server_cpus: str = "0"
    python: str = sys.executable
    modelyard_python: str = sys.executable
    modelyard_code: Path | None = None
    """A checkout whose code ``modelyard serve`` runs (its working directory), e.g. an export
    of main to compare with; None: this one's."""

    @cached_property
    def files(self) -> ReferenceFiles:
        """The reference model files (trained on first use, then reused from disk)."""
        return build_reference(self.work_dir)

    @cached_property
    def rows(self) -> Path:
        """The rows the load generators send (no training needed)."""
        return build_rows(self.work_dir)

    def log(self, name: str) -> Path:
        """The log file of contender ``name``."""
        return self.work_dir / "logs" / f"{name}.log"

    def port_file(self, name: str) -> Path:
        """A fresh port file path for contender ``name``."""
        path = self.work_dir / "ports" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        return path


Starter = Callable[[Context], ServerProcess]


@dataclass(frozen=True)
class Contender:
    """A server (or the in-process limit) and how to measure it."""

    name: str
    family: str
    description: str
    endpoints: tuple[Endpoint, ...] = ()
    start: Starter | None = None
    concurrencies: tuple[int, ...] = (1, 8, 64)
    server_cpus: str = "0"
    client_cpus: str = "1"
    notes: tuple[str, ...] = field(default_factory=tuple)


def _start_module(module: str, protocol: Protocol, extra: tuple[str, ...] = ()) -> Starter:
    """A starter for one of our own servers (``python -m benchmarks.<module>``)."""

    def start(ctx: Context) -> ServerProcess:
        name = module.rsplit(".", 1)[-1]
        port_file = ctx.port_file(name)
        cmd = [*pin(ctx.server_cpus), ctx.python, "-m", module, "--port-file", str(port_file)]
        server = start_server(name, [*cmd, *extra_args(ctx, extra)], ctx.log(name))
        try:
            ports = await_port_file(server, port_file, READY_TIMEOUT_S)
            if protocol == "grpc":
                await_ready(server, READY_TIMEOUT_S, grpc_targets=(f"127.0.0.1:{ports['grpc']}",))
            else:
                url = f"http://127.0.0.1:{ports['http']}/v2/health/ready"
                await_ready(server, READY_TIMEOUT_S, http_urls=(url,))
        except BaseException:
            server.stop()
            raise
        return server

    return start


def extra_args(ctx: Context, extra: tuple[str, ...]) -> list[str]:
    """Expand the ``{lightgbm}`` placeholder in a server's extra arguments."""
    return [arg.format(lightgbm=ctx.files.lightgbm) for arg in extra]


def builtin_contenders() -> list[Contender]:
    """The contenders that need nothing beyond this repository's environment."""
    return [
        Contender(
            name="limit",
            family="limit",
            description="onnxruntime in-process, 1 thread, no I/O (native LightGBM beside it)",
            concurrencies=(),
        ),
        Contender(
            name="echo-grpc",
            family="echo",
            description="bare grpc.aio V2 echo on uvloop, parses the request, no model",
            endpoints=(
                Endpoint("grpc", "gRPC", open_loop=True, perf_analyzer=True),
                Endpoint("grpc", "gRPC stream", stream=True, concurrencies=(64,)),
            ),
            start=_start_module("benchmarks.echo_grpc", "grpc"),
        ),
        Contender(
            name="echo-asgi",
            family="echo",
            description="raw ASGI echo on uvicorn (uvloop, httptools), reads the body, no model",
            endpoints=(Endpoint("http", "REST V2", path=V2_INFER_PATH, open_loop=True),),
            start=_start_module("benchmarks.echo_http", "http"),
        ),
        Contender(
            name="naive",
            family="naive",
            description="FastAPI + pydantic on uvicorn, native LightGBM predict per request",
            endpoints=(Endpoint("http", "REST V2", path=V2_INFER_PATH, open_loop=True),),
            start=_start_module("benchmarks.naive", "http", ("--model-file", "{lightgbm}")),
        ),
    ]
