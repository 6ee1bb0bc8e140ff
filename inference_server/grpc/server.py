"""Starting and stopping the grpc.aio listener.

``start_grpc_server`` returns once the server listens, with the bound port (port 0 picks a
free one). Message size limits are grpc's own channel options, so an oversized request is
refused with RESOURCE_EXHAUSTED before any of our code runs (``server.max_request_bytes``).
SO_REUSEPORT is off unless the caller asks for it (the worker processes of one server share
the port: process wiring, not a setting).

Shutdown rule (:meth:`GrpcServerHandle.close`), as Triton drains: first *we* refuse, then
grpc stops. ``close(grace)`` makes every new call answer UNAVAILABLE at once (our handlers'
wrapper, :class:`~inference_server.grpc.inflight.InFlightCalls`, refuses it before the handler
runs) and waits up to ``grace`` for the handlers running now (an open stream keeps being
answered); only when none runs does it stop grpc (GOAWAY), giving what grpc still holds
:data:`HANDOFF_GRACE_S` (calls handed to us an instant before and not yet started answer in
that time) before it cancels the rest. So every call is answered, refused (UNAVAILABLE) or
CANCELLED, and none waits longer than that hand-off grace; none waits for its own deadline.

NOTE: why not ``server.stop(grace)`` alone, or at the start of the drain: grpc counts calls
the C core accepted that no handler of ours ever starts. grpcio 1.85's accept loop (registered
methods, one request future per method) cancels its pending request futures when shutdown
begins, and a call the core matched to one of them just before is then never handed to a
handler; it is only cancelled when grpc's grace ends. ``stop(grace)`` alone waited for it
until the client's deadline (``test_sigterm_drains_and_exits_zero``, 5 of 150 runs on a loaded
2-core machine hung 10 s); ``stop(grace)`` at the start of the drain, with our handlers
awaited before the hand-off grace, left such a call waiting as long as an open stream ran
(``test_stop_drains_an_open_stream_and_refuses_new_calls``: 6 of 1,560 tries hung). Refusing
in our wrapper until our handlers are done keeps grpc's shutdown, and that race, to the last
:data:`HANDOFF_GRACE_S`. The price: during the first phase clients learn of the drain from
an UNAVAILABLE answer (retryable), not from a GOAWAY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import grpc

from inference_server.admin.service import AdminService
from inference_server.grpc.admin import ADMIN_SERVICE_NAME, AdminServicer
from inference_server.grpc.inflight import InFlightCalls
from inference_server.grpc.servicer import SERVICE_NAME, InferenceServicer

log = logging.getLogger(__name__)

HANDOFF_GRACE_S = 1.0
"""After our handlers finished: how long calls grpc still holds may take before they are
cancelled (within the drain's own ``grace``)."""

if TYPE_CHECKING:
    from inference_server.auth import BearerAuth
    from inference_server.service import InferenceService
    from modelyard.settings import ServerSettings


class GrpcServerHandle:
    """A running gRPC listener: its bound ``port`` and ``close``.

    Args:
        server: the started grpc.aio server.
        port: its bound port.
        calls: the counter every handler of ``server`` was wrapped with.
    """

    def __init__(self, server: grpc.aio.Server, port: int, calls: InFlightCalls) -> None:
        self.server = server
        self.port = port
        self.calls = calls

    async def close(self, grace: float | None = None) -> None:
        """Refuse new calls; our handlers running now get ``grace`` seconds to finish, then
        grpc stops and calls no handler is running are cancelled (the module's shutdown rule).

        ``grace=None`` cancels every call at once.
        """
        if grace is None:
            await self.server.stop(None)
            return
        deadline = time.monotonic() + grace
        self.calls.refuse_new()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.calls.idle()
        handoff = min(HANDOFF_GRACE_S, max(0.0, deadline - time.monotonic()))
        started = time.monotonic()
        await self.server.stop(handoff)
        if time.monotonic() - started >= handoff:
            log.warning("gRPC calls still open at the end of the drain were cancelled")


async def start_grpc_server(
    service: InferenceService,
    host: str,
    port: int,
    settings: ServerSettings,
    *,
    reuse_port: bool = False,
    auth: BearerAuth | None = None,
    admin: AdminService | None = None,
) -> GrpcServerHandle:
    """Bind and start the gRPC listener: the OIP service and ``modelyard.admin``.

    ``admin`` applies admin calls on every worker and holds the tokens; without it a
    single-process admin is built over ``service`` with ``auth`` (None: every call open).

    Raises:
        RuntimeError: the address cannot be bound.
    """
    limit = settings.max_request_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
    )
    admin = admin or AdminService.local(service, auth)
    admin_servicer = AdminServicer(admin)
    handlers = InferenceServicer(service, admin.auth).handlers()
    handlers.update(admin_servicer.repository_handlers())
    calls = InFlightCalls()
    for name, table in ((SERVICE_NAME, handlers), (ADMIN_SERVICE_NAME, admin_servicer.handlers())):
        add_handlers(server, name, {method: calls.track(h) for method, h in table.items()})
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return GrpcServerHandle(server, bound, calls)


def add_handlers(
    server: grpc.aio.Server, service_name: str, table: dict[str, grpc.RpcMethodHandler[Any, Any]]
) -> None:
    """Register ``table`` (method name -> handler) as ``service_name`` on ``server``."""
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service_name, table),))
    # registered methods skip grpc's per-call string lookup (grpc-stubs predates the API)
    server.add_registered_method_handlers(service_name, table)  # type: ignore[attr-defined]
