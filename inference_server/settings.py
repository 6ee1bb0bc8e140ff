"""Settings of one inference server process (built by the CLI or by tests; never from env).

``modelyard serve`` fills :class:`ServerSettings` from its flags; tests build it directly with
port 0. Reading the environment is ``modelyard.settings``' job alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from inference_server.prediction_log.settings import LogWriterSettings
from modelyard.model_repository import BatchingConfig

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class SketchSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a server sketches (``server.sketch_*`` settings).

    Attributes:
        enabled: sketch at all.
        window_s: window length in seconds (windows start at multiples of it, UTC).
        retention_s: how long a window is kept.
        sample_rate: share of answered requests sketched (every 1/rate-th, deterministic).
        queue_size: requests waiting for the background task; beyond it sketches are dropped.
        flush_interval_s: how often the background task drains the queue.
        max_categories: distinct new categories per feature and window before ``other``.
    """

    enabled: bool = True
    window_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    retention_s: Annotated[float, msgspec.Meta(gt=0)] = 3600.0
    sample_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    queue_size: Annotated[int, msgspec.Meta(ge=1)] = 4096
    flush_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 0.1
    max_categories: Annotated[int, msgspec.Meta(ge=1)] = 1000


class ServerSettings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Everything one server process needs to start.

    Attributes:
        model_repository: the repository directory.
        host: address to bind every listener to.
        grpc_port: gRPC port (0: any free port; the bound one is reported).
        http_port: HTTP port (0: any free port); None disables HTTP.
        metrics_port: Prometheus port (0: any free port); None disables it.
        control_mode: ``poll``, ``explicit`` or ``none`` (see ``repository.py``).
        poll_interval_s: seconds between repository scans in poll mode.
        intra_op_num_threads: onnxruntime threads per session unless config.json says.
        max_message_bytes: largest request (and response) accepted on gRPC and HTTP; larger
            ones are refused with RESOURCE_EXHAUSTED / 413.
        max_header_bytes: largest HTTP request head (request line + headers); a larger one is
            refused with 431 and the connection closed.
        request_timeout_s: an HTTP request whose head and body have not fully arrived this
            long after its first byte is refused with 408 and the connection closed
            (slowloris); idle keep-alive connections close on their own timeout.
        reuse_port: bind with SO_REUSEPORT so several worker processes share the ports.
        drain_timeout_s: how long ``stop()`` waits for in-flight requests.
        grpc_max_concurrent_rpcs: None for no limit; beyond it gRPC answers RESOURCE_EXHAUSTED.
        default_batching: batching of models whose config.json has no ``batching`` section.
        prediction_log: the prediction log (off unless it names a database).
        admin_token: bearer token of admin calls ("": open); see ``inference_server.auth``.
        inference_token: bearer token of inference calls ("": open).
        admin_timeout_s: how long an admin call waits for every worker to apply it.
        sketches: drift sketching (:mod:`inference_server.drift`).
        control_socket: the supervisor's Unix socket when this process is one of N workers
            (``modelyard serve --workers N`` sets it); None: a single process, admin calls
            apply here only (``inference_server.admin``).
    """

    model_repository: Path
    host: str = "127.0.0.1"
    grpc_port: Port = 8001
    http_port: Port | None = 8000
    metrics_port: Port | None = 8002
    control_mode: Literal["poll", "explicit", "none"] = "poll"
    poll_interval_s: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    intra_op_num_threads: Annotated[int, msgspec.Meta(ge=1)] = 1
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024 * 1024
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    reuse_port: bool = False
    drain_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    grpc_max_concurrent_rpcs: int | None = None
    default_batching: BatchingConfig = BatchingConfig()
    prediction_log: LogWriterSettings = LogWriterSettings()
    admin_token: str = ""
    inference_token: str = ""
    admin_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0
    control_socket: str | None = None
    sketches: SketchSettings = SketchSettings()
