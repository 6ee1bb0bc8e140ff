"""Composition root: builds the server from settings and owns its lifecycle.

:meth:`InferenceServer.start` loads the repository (every model warmed, as Triton does before
it opens its endpoints), then opens the gRPC, HTTP and metrics listeners and returns with their
bound ports (port 0 picks free ports). :meth:`InferenceServer.stop` drains: readiness turns
false, the listeners stop accepting and give in-flight calls ``drain_timeout_s`` to finish,
then every model version is closed once its last request is done.

Admin calls go through :attr:`InferenceServer.admin` (token check + fan-out); a feature with
its own admin operation registers it on :attr:`InferenceServer.fanout` in ``__init__``
(:mod:`inference_server.admin.fanout`). A worker of ``--workers N`` (``control_socket`` set)
first joins its supervisor and replays the server's desired state, which in explicit mode
replaces the startup scan.

The HTTP adapter lives in ``inference_server.http`` and is reached through one seam,
``start_http_server(service, host, port, settings, admin=...)`` returning a handle with
``.port`` and ``async close()``. Until that package exists the server runs without HTTP and
logs so.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Protocol

from inference_server.admin.channel import ChannelFanout
from inference_server.admin.fanout import LocalFanout
from inference_server.admin.service import AdminService, register_builtin_ops
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
    from inference_server.settings import ServerSettings

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
        settings: ServerSettings,
        *,
        worker_index: int = 0,
        on_admin_lost: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.hooks = PrometheusHooks()
        self.manager = ModelManager(
            settings.model_repository,
            self.hooks,
            intra_op_num_threads=settings.intra_op_num_threads,
            default_batching=settings.default_batching,
        )
        self.watcher = RepositoryWatcher(
            self.manager, mode=settings.control_mode, poll_interval_s=settings.poll_interval_s
        )
        self.sketches = SketchBook(settings.sketches)
        self.hooks.registry.register(self.sketches)
        self.log_writer: PredictionLogWriter | None = None
        if settings.prediction_log.enabled:
            self.log_writer = PredictionLogWriter(settings.prediction_log, worker_index)
            self.hooks.registry.register(self.log_writer)
        self.service = InferenceService(
            self.manager,
            self.watcher,
            self.hooks,
            sketches=self.sketches,
            log=None if self.log_writer is None else self.log_writer.capture,
        )
        self.auth = BearerAuth(settings.admin_token, settings.inference_token)
        # One of N workers talks to its supervisor; a lone process is the whole server.
        self.fanout: Fanout = (
            ChannelFanout(
                settings.control_socket,
                worker_index,
                timeout_s=settings.admin_timeout_s,
                on_lost=on_admin_lost,
            )
            if settings.control_socket
            else LocalFanout()
        )
        register_builtin_ops(
            self.fanout,
            self.service,
            pin=bool(settings.control_socket) and settings.control_mode != "poll",
            default_batching=settings.default_batching,
        )
        if self.log_writer is not None:
            register_flush(self.fanout, self.log_writer)
        self.admin = AdminService(self.fanout, self.auth)
        self._worker_index = worker_index
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
        settings = self.settings
        if not settings.model_repository.is_dir():
            raise ConfigurationError(
                f"model repository {str(settings.model_repository)!r} is not a directory"
            )
        # A worker of N first replays the server's desired state; in explicit mode that *is*
        # its startup load (the versions the server serves, not what the disk holds now).
        if self.log_writer is not None:
            # NOTE: before any answer: it also resumes shipping what a previous run spooled.
            self.log_writer.start()
        await self.fanout.start()
        await self.watcher.start(
            scan=not settings.control_socket or settings.control_mode == "poll"
        )
        if settings.sketches.enabled:
            self.sketches.start()
        self._grpc = await start_grpc_server(
            self.service, settings.host, settings.grpc_port, settings, admin=self.admin
        )
        if settings.http_port is not None:
            starter = _find_http_starter()
            if starter is None:
                log.warning("inference_server.http is not installed: no HTTP listener")
            else:
                self._http = await starter(
                    self.service, settings.host, settings.http_port, settings, admin=self.admin
                )
        if settings.metrics_port is not None:
            self._metrics = MetricsServer(self.hooks.registry)
            port = settings.metrics_port + self._worker_index if settings.metrics_port else 0
            await self._metrics.start(settings.host, port, reuse_port=False)
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
        grace = self.settings.drain_timeout_s
        if self._http is not None:
            await self._http.close()
        if self._grpc is not None:
            await self._grpc.close(grace)
        await self.sketches.stop()
        await self.manager.close()
        if self.log_writer is not None:
            # NOTE: after the listeners drained, so every answer given is in the buffer.
            await self.log_writer.close()
        if self._metrics is not None:
            await self._metrics.close()
        log.info("stopped")
