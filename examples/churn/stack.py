"""The demo's services: an inference server (N workers) and the control plane that knows it.

The server's ports are chosen first, so the control plane starts knowing where to push A/B
routes and read drift sketches (``MODELYARD_CONTROL_PLANE_INFERENCE_SERVERS``); both share a
freshly generated admin token for the server's admin API (``MODELYARD_SERVER_ADMIN_TOKEN``), and
the server logs every prediction into the platform database the control plane reads
(``MODELYARD_PREDICTION_LOG_ENABLED``). Each process announces readiness on stdout; nothing
polls or sleeps.
"""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

from examples.churn.processes import (
    ProcessGroup,
    control_plane_url,
    free_port,
    free_ports,
    listening_worker,
)


@dataclasses.dataclass(frozen=True)
class Stack:
    """Where the demo's services listen."""

    control_plane: str
    grpc_port: int
    http_port: int
    metrics_port: int
    server_admin_token: str

    @property
    def server_http(self) -> str:
        """The inference server's HTTP base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def server_admin(self) -> dict[str, str]:
        """Headers of an admin call to the inference server."""
        return {"Authorization": f"Bearer {self.server_admin_token}"}

    def ports(self) -> dict[str, int]:
        """The server's ports by name."""
        return {
            "grpc_port": self.grpc_port,
            "http_port": self.http_port,
            "metrics_port": self.metrics_port,
        }


SKETCH_WINDOW_S = 5.0
"""The server's sketch window: the monitoring step scores its drifted traffic in a window of
its own (:func:`examples.churn.monitoring_step.run_monitoring_loop`)."""


def start_stack(group: ProcessGroup, repository: Path, workers: int) -> Stack:
    """Start the inference server and the control plane; return once both listen."""
    repository.mkdir(parents=True, exist_ok=True)  # nothing is published before promotion
    grpc_port, http_port, metrics_port = free_port(), free_port(), free_ports(workers)
    token = secrets.token_urlsafe(24)
    group.env = group.env | {
        "MODELYARD_SERVER_ADMIN_TOKEN": token,
        "MODELYARD_CONTROL_PLANE_INFERENCE_SERVERS": f"http://127.0.0.1:{http_port}",
        "MODELYARD_PREDICTION_LOG_ENABLED": "true",
        # Short sketch windows, so a drift check can look at the drifted traffic alone.
        "MODELYARD_SERVER_SKETCH_WINDOW_S": str(SKETCH_WINDOW_S),
    }
    server = group.start(
        "inference-server",
        "serve",
        f"--model-repository={repository}",
        f"--grpc-port={grpc_port}",
        f"--http-port={http_port}",
        f"--metrics-port={metrics_port}",
        f"--workers={workers}",
        "--model-control-mode=poll",
    )
    for _ in range(workers):
        server.wait_for(listening_worker)
    url = group.start("control-plane", "control-plane", "--port", "0").wait_for(control_plane_url)
    return Stack(
        control_plane=url,
        grpc_port=grpc_port,
        http_port=http_port,
        metrics_port=metrics_port,
        server_admin_token=token,
    )
