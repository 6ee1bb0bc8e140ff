"""Prometheus metrics of one server process, served on the metrics port.

Each server owns its :class:`prometheus_client.CollectorRegistry` (no global registry, so
several servers can live in one test process). Per-version label children are bound once when
a version loads (:meth:`PrometheusHooks.recorder`), so the request path only increments and
observes. The exposition endpoint is a few lines of asyncio on the server's own loop (no
thread): ``GET /metrics`` (any path answers) in the Prometheus text format. With ``--workers
N`` each worker serves its own metrics on ``metrics_port + worker_index``.

Metrics (labels ``model``, ``version``):
``modelyard_inference_requests_total``, ``modelyard_inference_failures_total`` (+ ``code``),
``modelyard_inference_request_seconds`` and ``modelyard_inference_queue_seconds``
(histograms), ``modelyard_inference_batch_rows`` (histogram of rows per session run),
``modelyard_inference_compute_seconds`` (per session run), ``modelyard_model_events_total``
(+ ``event``: load_started, loaded, load_failed, unloaded).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from inference_server.loaded_version import VersionRecorder


LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class PrometheusHooks:
    """Model-manager hooks that record Prometheus metrics in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "version")
        reg = self.registry
        self.requests = Counter(
            "modelyard_inference_requests",
            "Successful inference requests.",
            labels,
            registry=reg,
        )
        self.failures = Counter(
            "modelyard_inference_failures",
            "Failed inference requests by error code.",
            (*labels, "code"),
            registry=reg,
        )
        self.latency = Histogram(
            "modelyard_inference_request_seconds",
            "Server-side request latency.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.queue = Histogram(
            "modelyard_inference_queue_seconds",
            "Mean batch-queue wait of the requests of each session run.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.compute = Histogram(
            "modelyard_inference_compute_seconds",
            "onnxruntime time per session run.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.batch_rows = Histogram(
            "modelyard_inference_batch_rows",
            "Rows per session run (batch size).",
            labels,
            buckets=ROW_BUCKETS,
            registry=reg,
        )
        self.events = Counter(
            "modelyard_model_events",
            "Model load/unload events.",
            (*labels, "event"),
            registry=reg,
        )

    def event(self, model: str, version: int, what: str) -> None:
        """Count a load/unload event."""
        self.events.labels(model, str(version), what).inc()

    def recorder(self, model: str, version: str) -> VersionRecorder:
        """Bind the per-version children once."""
        return _Recorder(self, model, version)

    def failure(self, model: str, version: str, code: str, seconds: float) -> None:
        """Count one failed request."""
        self.failures.labels(model, version, code).inc()


class _Recorder:
    __slots__ = ("_compute", "_latency", "_queue", "_requests", "_rows")

    def __init__(self, hooks: PrometheusHooks, model: str, version: str) -> None:
        self._requests = hooks.requests.labels(model, version)
        self._latency = hooks.latency.labels(model, version)
        self._queue = hooks.queue.labels(model, version)
        self._compute = hooks.compute.labels(model, version)
        self._rows = hooks.batch_rows.labels(model, version)

    def request(self, seconds: float) -> None:
        self._requests.inc()
        self._latency.observe(seconds)

    def batch(self, rows: int, requests: int, queue_ns: int, compute_ns: int) -> None:
        self._rows.observe(rows)
        self._compute.observe(compute_ns / 1e9)
        self._queue.observe(queue_ns / 1e9 / requests)


class MetricsServer:
    """A minimal asyncio HTTP endpoint answering every GET with the registry's exposition."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Bind and listen; ``port`` 0 picks a free port (see ``self.port``)."""
        self._server = await asyncio.start_server(
            self._handle, host, port, reuse_port=reuse_port or None
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError
        ):
            await reader.readuntil(b"\r\n\r\n")
            body = generate_latest(self._registry)
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE_LATEST}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
