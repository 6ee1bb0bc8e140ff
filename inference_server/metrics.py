"""Prometheus metrics of one server process, served on the metrics port.

Each server owns its :class:`prometheus_client.CollectorRegistry` (no global registry, so
several servers can live in one test process). Per-version recorders are created once when a
version loads (:meth:`PrometheusHooks.recorder`), so the request path only increments plain
integers; everything runs on the event loop, scrapes included, so no locks are needed. The
exposition endpoint is a few lines of asyncio on the server's own loop (no thread):
``GET /metrics`` (any path answers) in the Prometheus text format. With ``--workers
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
import bisect
import contextlib
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from prometheus_client.metrics_core import Metric

    from inference_server.loaded_version import VersionRecorder


LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _Histogram:
    """A lock-free histogram: per-bucket counts, made cumulative only when scraped."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class _Recorder:
    """Per-version sink: plain integers and lists, touched only on the event loop."""

    __slots__ = ("compute", "latency", "queue", "requests", "rows")

    def __init__(self) -> None:
        self.requests = 0
        self.latency = _Histogram(LATENCY_BUCKETS)
        self.queue = _Histogram(LATENCY_BUCKETS)
        self.compute = _Histogram(LATENCY_BUCKETS)
        self.rows = _Histogram(ROW_BUCKETS)

    def request(self, seconds: float) -> None:
        self.requests += 1
        self.latency.observe(seconds)

    def batch(self, rows: int, queue_waits_ns: Sequence[int], compute_ns: int) -> None:
        self.rows.observe(rows)
        self.compute.observe(compute_ns / 1e9)
        observe = self.queue.observe
        for wait in queue_waits_ns:
            observe(wait / 1e9)


_HISTOGRAMS = (
    ("latency", "modelyard_inference_request_seconds", "Server-side request latency."),
    (
        "queue",
        "modelyard_inference_queue_seconds",
        "Time each request waited in the batch queue.",
    ),
    (
        "compute",
        "modelyard_inference_compute_seconds",
        "Time per session run: the model and the hand-over of its answers to the prediction "
        "log and the drift sketches.",
    ),
    ("rows", "modelyard_inference_batch_rows", "Rows per session run (batch size)."),
)


class PrometheusHooks:
    """Model-manager hooks that record Prometheus metrics in their own registry.

    The per-request series live in :class:`_Recorder` objects (no prometheus-client locks on
    the request path: its ``Histogram.observe`` cost ~3 us per call, four per single-row
    request) and are turned into metric families when scraped. Rare events (failures,
    load/unload) use prometheus-client counters directly.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._recorders: dict[tuple[str, str], _Recorder] = {}
        labels = ("model", "version")
        self.failures = Counter(
            "modelyard_inference_failures",
            "Failed inference requests by error code.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.events = Counter(
            "modelyard_model_events",
            "Model load/unload events.",
            (*labels, "event"),
            registry=self.registry,
        )
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """Metric families of the per-version recorders (called by the registry on scrape)."""
        requests = CounterMetricFamily(
            "modelyard_inference_requests",
            "Successful inference requests.",
            labels=("model", "version"),
        )
        families = {
            attr: HistogramMetricFamily(name, doc, labels=("model", "version"))
            for attr, name, doc in _HISTOGRAMS
        }
        for key, recorder in self._recorders.items():
            requests.add_metric(key, recorder.requests)
            for attr, family in families.items():
                hist: _Histogram = getattr(recorder, attr)
                family.add_metric(key, hist.buckets(), hist.total)
        yield requests
        yield from families.values()

    def event(self, model: str, version: int, what: str) -> None:
        """Count a load/unload event."""
        self.events.labels(model, str(version), what).inc()

    def recorder(self, model: str, version: str) -> VersionRecorder:
        """The sink of one version (a reloaded version number continues its series)."""
        return self._recorders.setdefault((model, version), _Recorder())

    def failure(self, model: str, version: str, code: str, seconds: float) -> None:
        """Count one failed request."""
        self.failures.labels(model, version, code).inc()


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
