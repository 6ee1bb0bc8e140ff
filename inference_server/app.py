"""Composition root: builds the server from settings and owns its lifecycle.

The server reads the process's one :class:`modelyard.settings.Settings` as it is: the
``server`` section (listeners, limits, batching defaults, tokens, sketches) and the
``prediction_log`` section with its database (:attr:`Settings.prediction_log_url`). How the
process is wired in is passed beside it: a worker of ``--workers N`` gets its
:class:`~inference_server.wiring.WorkerSeat` (index, the supervisor's socket, SO_REUSEPORT), and
tests may put the prediction log in a PostgreSQL schema of their own (``log_schema``).

:meth:`InferenceServer.start` loads the repository (every model warmed, as Triton does before
it opens its endpoints), then opens the gRPC, HTTP and metrics listeners and returns with their
bound ports (port 0 picks free ports). :meth:`InferenceServer.stop` drains: readiness turns
false and new inference requests are refused (UNAVAILABLE / 503); HTTP and gRPC stop
accepting and drain at once, both within the same ``drain_timeout_s`` (so a SIGTERM ends
within about that, not twice it); then every model
version is closed once its last request is done. gRPC waits for our handlers, not for grpc's
count of live calls, and cancels what no handler runs (the rule:
:mod:`inference_server.grpc.server`), so no caller waits for its own deadline.

Admin calls go through :attr:`InferenceServer.admin` (token check + fan-out); a feature with
its own admin operation registers it on :attr:`InferenceServer.fanout` in ``__init__``
(:mod:`inference_server.admin.fanout`). A worker of ``--workers N`` (with a seat) first joins
its supervisor and replays the server's desired state, which in explicit mode replaces the
startup scan.

The HTTP adapter lives in ``inference_server.http`` and is reached through one seam,
``start_http_server(service, host, port, settings.server, reuse_port=..., admin=...)``
returning a handle with ``.port`` and ``async close()``. Until that package exists the server
runs without HTTP and logs so.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from inference_server.admin.channel import ChannelFanout
from inference_server.admin.fanout import LocalFanout
from inference_server.admin.service import AdminService, register_builtin_ops
from inference_server.answers import answer_tap
from inference_server.auth import BearerAuth
from inference_server.drift.book import SketchBook
from inference_server.grpc.server import start_grpc_server
from inference_server.metrics import MetricsServer, PrometheusHooks
from inference_server.model_manager import ModelManager
from inference_server.prediction_log import PredictionLogWriter
from inference_server.prediction_log.admin import register_flush
from inference_server.repository import RepositoryWatcher
from inference_server.service import InferenceService
from modelyard.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from inference_server.admin.fanout import Fanout
    from inference_server.grpc.server import GrpcServerHandle
    from inference_server.wiring import WorkerSeat
    from modelyard.settings import Settings

log = logging.getLogger(__name__)


class ListenerHandle(Protocol):
    """What a protocol adapter's start function returns."""

    port: int

    async def close(self) -> None:
        """Stop accepting; let in-flight requests finish."""


def _find_http_starter() -> Callable[..., Awaitable[ListenerHandle]] | None:
    try:
        module = importlib.import_module("inference_server.http")
    except ModuleNotFoundError:
        return None
    starter: Callable[..., Awaitable[ListenerHandle]] | None = getattr(
        module, "start_http_server", None
    )
    return starter


class InferenceServer:
    """One server process: repository, service and listeners."""

    def __init__(
        self,
        settings: Settings,
        *,
        seat: WorkerSeat | None = None,
        log_schema: str | None = None,
        on_admin_lost: Callable[[], None] | None = None,
    ) -> None:
        """Build the server (nothing listens before :meth:`start`).

        Args:
            settings: the process's settings; ``server`` and ``prediction_log`` are read.
            seat: this worker's place among N (None: a lone process, the whole server).
            log_schema: PostgreSQL schema of the prediction-log table (None: the default).
            on_admin_lost: called when a worker loses its supervisor.
        """
        self.settings = settings
        server = settings.server
        self._seat = seat
        self._mode = server.effective_control_mode
        self._repository = Path(server.model_repository)
        self.hooks = PrometheusHooks()
        self.sketches = SketchBook(server)
        self.hooks.registry.register(self.sketches)
        self.log_writer: PredictionLogWriter | None = None
        if settings.prediction_log.enabled:
            self.log_writer = PredictionLogWriter(
                settings.prediction_log,
                seat.index if seat else 0,
                database_url=settings.prediction_log_url,
                schema=log_schema,
                nice=server.background_nice,
            )
            self.hooks.registry.register(self.log_writer)
        capture = None if self.log_writer is None else self.log_writer.capture
        observe = self.sketches.observe if self.sketches.enabled else None
        self.manager = ModelManager(
            self._repository,
            self.hooks,
            intra_op_num_threads=server.intra_op_threads,
            default_batching=server.default_batching,
            answers=answer_tap(observe, capture),
        )
        self.watcher = RepositoryWatcher(
            self.manager, mode=self._mode, poll_interval_s=server.poll_interval_s
        )
        self.service = InferenceService(
            self.manager,
            self.watcher,
            self.hooks,
            sketches=self.sketches,
            log=capture,
        )
        self.auth = BearerAuth(server.admin_token, server.inference_token)
        # One of N workers talks to its supervisor; a lone process is the whole server.
        self.fanout: Fanout = (
            ChannelFanout(
                seat.control_socket,
                seat.index,
                timeout_s=server.admin_timeout_s,
                on_lost=on_admin_lost,
            )
            if seat is not None
            else LocalFanout()
        )
        register_builtin_ops(
            self.fanout,
            self.service,
            pin=seat is not None and self._mode != "poll",
            default_batching=server.default_batching,
        )
        if self.log_writer is not None:
            register_flush(self.fanout, self.log_writer)
        self.admin = AdminService(self.fanout, self.auth)
        self._grpc: GrpcServerHandle | None = None
        self._http: ListenerHandle | None = None
        self._metrics: MetricsServer | None = None

    @property
    def grpc_port(self) -> int:
        """The bound gRPC port (after ``start``)."""
        return self._grpc.port if self._grpc else 0

    @property
    def http_port(self) -> int | None:
        """The bound HTTP port, or None when HTTP is off."""
        return self._http.port if self._http else None

    @property
    def metrics_port(self) -> int | None:
        """The bound metrics port, or None when metrics are off."""
        return self._metrics.port if self._metrics else None

    async def start(self) -> None:
        """Load the repository, open the listeners; returns once they listen.

        Raises:
            ConfigurationError: the model repository is not a directory.
        """
        server, seat = self.settings.server, self._seat
        if not self._repository.is_dir():
            raise ConfigurationError(
                f"model repository {str(self._repository)!r} is not a directory"
            )
        # A worker of N first replays the server's desired state; in explicit mode that *is*
        # its startup load (the versions the server serves, not what the disk holds now).
        if self.log_writer is not None:
            # NOTE: before any answer: it also resumes shipping what a previous run spooled.
            self.log_writer.start()
        await self.fanout.start()
        await self.watcher.start(scan=seat is None or self._mode == "poll")
        if self.sketches.enabled:
            self.sketches.start()
        # NOTE: the N workers of one server share its gRPC and HTTP ports (SO_REUSEPORT).
        shared = seat is not None
        self._grpc = await start_grpc_server(
            self.service, server.host, server.grpc_port, server, reuse_port=shared, admin=self.admin
        )
        if server.http_port is not None:
            starter = _find_http_starter()
            if starter is None:
                log.warning("inference_server.http is not installed: no HTTP listener")
            else:
                self._http = await starter(
                    self.service,
                    server.host,
                    server.http_port,
                    server,
                    reuse_port=shared,
                    admin=self.admin,
                )
        if server.metrics_port is not None:
            self._metrics = MetricsServer(self.hooks.registry)
            offset = seat.index if seat else 0
            port = server.metrics_port + offset if server.metrics_port else 0
            await self._metrics.start(server.host, port, reuse_port=False)
        self.service.ready = True
        await self.fanout.ready()
        log.info(
            "listening",
            extra={
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
                "metrics_port": self.metrics_port,
            },
        )

    async def stop(self) -> None:
        """Drain and stop: refuse new work, finish in-flight requests, close every model."""
        self.service.draining = True
        await self.fanout.close()
        await self.watcher.stop()
        grace = self.settings.server.drain_timeout_s
        # NOTE: both listeners drain at once, so SIGTERM takes at most one drain_timeout_s
        # (one after the other took up to twice it: longer than Kubernetes' default 30 s grace).
        closing: list[Awaitable[None]] = []
        if self._http is not None:
            closing.append(self._http.close())
        if self._grpc is not None:
            closing.append(self._grpc.close(grace))
        await asyncio.gather(*closing)
        await self.sketches.stop()
        await self.manager.close()
        if self.log_writer is not None:
            # NOTE: after the listeners drained, so every answer given is in the buffer.
            await self.log_writer.close()
        if self._metrics is not None:
            await self._metrics.close()
        log.info("stopped")
