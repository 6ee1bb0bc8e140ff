"""gRPC admin calls: repository load/unload of the OIP service and ``modelyard.admin``.

Each method converts, delegates to :class:`~inference_server.admin.service.AdminService`
(token check + fan-out to every worker) and converts back. The OIP load/unload responses
have no field for it, so every admin answer also carries the trailing metadata
``workers-applied``; ``modelyard.admin.ModelyardAdmin`` answers carry it as a field too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import msgspec

from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import modelyard_admin_pb2 as apb
from inference_server.grpc.convert import check_repository_name
from inference_server.grpc.servicer import Context, authorization, status_of
from modelyard.enums import ModelVariant
from modelyard.errors import InvalidArgument
from modelyard.model_repository import Route

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from inference_server.admin.service import AdminService

ADMIN_SERVICE_NAME = "modelyard.admin.ModelyardAdmin"
WORKERS_APPLIED = "workers-applied"


def admin_unary(
    fn: Callable[[Any, str | None], Awaitable[tuple[Any, int]]],
    request_type: Any,
    response_type: Any,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary admin handler: ``fn(request, authorization) -> (response, workers_applied)``."""
    parse = request_type.FromString

    async def handler(data: bytes, context: Context) -> Any:
        try:
            response, applied = await fn(parse(data), authorization(context))
        except Exception as exc:  # the edge: every error becomes a status
            code, message = status_of(exc)
        else:
            context.set_trailing_metadata(((WORKERS_APPLIED, str(applied)),))
            return response
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(
        handler, response_serializer=response_type.SerializeToString
    )


def routes_from_proto(routes: Sequence[apb.Route]) -> tuple[Route, ...]:
    """Proto routes as config.json routes (an empty variant is ``control``).

    Raises:
        InvalidArgument: a version < 1, a negative weight or an unknown variant.
    """
    raw = [
        {"version": r.version, "weight": r.weight, "variant": r.variant or "control"}
        for r in routes
    ]
    try:
        return msgspec.convert(raw, tuple[Route, ...])
    except msgspec.ValidationError as exc:
        raise InvalidArgument(f"invalid routes: {exc}") from None


def _routes_to_proto(model: str, routes: Sequence[Route], applied: int) -> apb.RoutesResponse:
    return apb.RoutesResponse(
        model=model,
        routes=[
            apb.Route(version=r.version, weight=r.weight, variant=ModelVariant(r.variant).value)
            for r in routes
        ],
        workers_applied=applied,
    )


class AdminServicer:
    """The admin methods over an :class:`AdminService`."""

    def __init__(self, admin: AdminService) -> None:
        self._admin = admin

    async def load(
        self, req: pb.RepositoryModelLoadRequest, token: str | None
    ) -> tuple[pb.RepositoryModelLoadResponse, int]:
        check_repository_name(req.repository_name)
        done = await self._admin.load(req.model_name, token, req.parameters)
        return pb.RepositoryModelLoadResponse(), done.workers_applied

    async def unload(
        self, req: pb.RepositoryModelUnloadRequest, token: str | None
    ) -> tuple[pb.RepositoryModelUnloadResponse, int]:
        check_repository_name(req.repository_name)
        return pb.RepositoryModelUnloadResponse(), await self._admin.unload(req.model_name, token)

    async def get_routes(
        self, req: apb.GetRoutesRequest, token: str | None
    ) -> tuple[apb.RoutesResponse, int]:
        done = await self._admin.routes(req.model, token)
        return _routes_to_proto(
            req.model, done.value.routes, done.workers_applied
        ), done.workers_applied

    async def set_routes(
        self, req: apb.SetRoutesRequest, token: str | None
    ) -> tuple[apb.RoutesResponse, int]:
        self._admin.auth.check_admin(token)
        done = await self._admin.set_routes(req.model, routes_from_proto(req.routes), token)
        return _routes_to_proto(
            req.model, done.value.routes, done.workers_applied
        ), done.workers_applied

    def repository_handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """RepositoryModelLoad/Unload of ``inference.GRPCInferenceService``."""
        return {
            "RepositoryModelLoad": admin_unary(
                self.load, pb.RepositoryModelLoadRequest, pb.RepositoryModelLoadResponse
            ),
            "RepositoryModelUnload": admin_unary(
                self.unload, pb.RepositoryModelUnloadRequest, pb.RepositoryModelUnloadResponse
            ),
        }

    def handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """The method table of ``modelyard.admin.ModelyardAdmin``."""
        return {
            "GetRoutes": admin_unary(self.get_routes, apb.GetRoutesRequest, apb.RoutesResponse),
            "SetRoutes": admin_unary(self.set_routes, apb.SetRoutesRequest, apb.RoutesResponse),
        }
