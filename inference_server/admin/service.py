"""The admin facade both transports call: the token check, then the fan-out.

Every admin call goes through :meth:`AdminService.call` (or a typed helper over it), which
checks the admin bearer token (:mod:`inference_server.auth`) and applies the operation on
every worker (:mod:`inference_server.admin.fanout`). Transports convert and delegate, as
with :class:`~inference_server.service.InferenceService`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference_server.admin import repository_ops
from inference_server.admin import routes as route_ops
from inference_server.admin.fanout import FanoutResult, LocalFanout
from inference_server.auth import BearerAuth
from inference_server.drift.reads import register_sketch_ops
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from inference_server.admin.fanout import Fanout
    from inference_server.service import InferenceService
    from modelyard.model_repository import BatchingConfig, Route


def register_builtin_ops(
    fanout: Fanout,
    service: InferenceService,
    *,
    pin: bool,
    default_batching: BatchingConfig | None = None,
) -> None:
    """Register the repository, route and sketch-read operations on ``fanout``."""
    repository_ops.register_repository_ops(
        fanout, service, pin=pin, default_batching=default_batching
    )
    route_ops.register_route_ops(fanout, service.manager)
    if service.sketches is not None:
        register_sketch_ops(fanout, service.sketches)


class AdminService:
    """Admin calls: authenticated, then applied on every worker."""

    def __init__(self, fanout: Fanout, auth: BearerAuth) -> None:
        self.fanout = fanout
        self.auth = auth

    @classmethod
    def local(cls, service: InferenceService, auth: BearerAuth | None = None) -> AdminService:
        """The admin of a single-process service (adapters built without a server, tests)."""
        fanout = LocalFanout()
        register_builtin_ops(fanout, service, pin=False)
        return cls(fanout, auth or BearerAuth())

    async def call(self, op: str, payload: object, authorization: str | bytes | None) -> Any:
        """Check the admin token, then apply ``op`` on every worker.

        Returns:
            The :class:`~inference_server.admin.fanout.FanoutResult` of the operation.

        Raises:
            Unauthenticated: the admin token is configured and not presented.
            ModelyardError: the operation failed (in a worker, with its code and reason).
        """
        self.auth.check_admin(authorization)
        return await self.fanout.call(op, payload)

    async def load(
        self, model: str, authorization: str | bytes | None, parameters: Collection[str] = ()
    ) -> FanoutResult[repository_ops.Loaded]:
        """Load (or reload) ``model`` on every worker (``parameters``: the names of the load
        parameters the client sent, on either protocol: none is supported).

        Raises:
            Unauthenticated, NotFound, FailedPrecondition, InvalidArgument: as the operation,
                or load parameters given.
        """
        self.auth.check_admin(authorization)  # NOTE: 401 before any other complaint
        if parameters:
            raise InvalidArgument(f"load parameters are not supported: {sorted(parameters)}")
        request = repository_ops.LoadRequest(name=model)
        result: FanoutResult[repository_ops.Loaded] = await self.call(
            repository_ops.LOAD, request, authorization
        )
        return result

    async def unload(self, model: str, authorization: str | bytes | None) -> int:
        """Unload ``model`` on every worker; returns how many applied it.

        Raises:
            Unauthenticated, NotFound, FailedPrecondition: as the operation.
        """
        request = repository_ops.UnloadRequest(name=model)
        result: FanoutResult[bool] = await self.call(repository_ops.UNLOAD, request, authorization)
        return result.workers_applied

    async def routes(
        self, model: str, authorization: str | bytes | None
    ) -> FanoutResult[route_ops.ModelRoutes]:
        """The routes every worker serves for ``model``.

        Raises:
            Unauthenticated, NotFound: as the operation.
            Unavailable: workers disagree (a poll-mode server converging).
        """
        result: FanoutResult[route_ops.ModelRoutes] = await self.call(
            route_ops.GET, route_ops.RoutesQuery(model=model), authorization
        )
        return result

    async def set_routes(
        self, model: str, new: Sequence[Route], authorization: str | bytes | None
    ) -> FanoutResult[route_ops.ModelRoutes]:
        """Validate, persist and apply new routes on every worker.

        Raises:
            Unauthenticated, NotFound: as the operation.
            InvalidArgument: the routes break a rule (:func:`route_ops.check_routes`).
        """
        update = route_ops.RoutesUpdate(model=model, routes=tuple(new))
        result: FanoutResult[route_ops.ModelRoutes] = await self.call(
            route_ops.SET, update, authorization
        )
        return result
