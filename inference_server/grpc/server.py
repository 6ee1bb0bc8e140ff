"""Starting and stopping the grpc.aio listener.

``start_grpc_server`` returns once the server listens, with the bound port (port 0 picks a
free one). Message size limits are grpc's own channel options, so an oversized request is
refused with RESOURCE_EXHAUSTED before any of our code runs (``server.max_request_bytes``).
SO_REUSEPORT is off unless the caller asks for it (the worker processes of one server share
the port: process wiring, not a setting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from inference_server.admin.service import AdminService
from inference_server.grpc.admin import ADMIN_SERVICE_NAME, AdminServicer
from inference_server.grpc.servicer import SERVICE_NAME, InferenceServicer

if TYPE_CHECKING:
    from inference_server.auth import BearerAuth
    from inference_server.service import InferenceService
    from modelyard.settings import ServerSettings


class GrpcServerHandle:
    """A running gRPC listener: its bound ``port`` and ``close``."""

    def __init__(self, server: grpc.aio.Server, port: int) -> None:
        self.server = server
        self.port = port

    async def close(self, grace: float | None = None) -> None:
        """Stop accepting calls; in-flight calls get ``grace`` seconds to finish."""
        await self.server.stop(grace)


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
    for name, table in ((SERVICE_NAME, handlers), (ADMIN_SERVICE_NAME, admin_servicer.handlers())):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, table),))
        # registered methods skip grpc's per-call string lookup (grpc-stubs predates the API)
        server.add_registered_method_handlers(name, table)  # type: ignore[attr-defined]
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return GrpcServerHandle(server, bound)
