"""The gRPC servicer: each method converts, delegates to the service and converts back.

Handlers are registered with raw ``bytes`` requests and parse them in :func:`unary`, so a
malformed protobuf becomes INVALID_ARGUMENT (grpc's own deserializer failure would be
INTERNAL). Domain errors map through :data:`~inference_server.grpc.errors.GRPC_STATUS`;
anything else is logged once here, at the edge, and answered INTERNAL. Nothing is logged per
successful request.

ModelStreamInfer (Triton's shape) reads a stream's requests in a tight loop and queues each
at once in its version's batcher (:meth:`InferenceService.start_infer`: a future, no task per
request), so a stream's requests batch together; answers are written in request order, each
carrying its request's id, so a client can pair them by position or by id. An error answers
that request with ``error_message`` (and its id) and the stream goes on. The machinery and
its measurements: :mod:`inference_server.grpc.stream`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError

from inference_server.auth import AUTHORIZATION, BearerAuth
from inference_server.grpc import convert
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc.errors import GRPC_STATUS
from inference_server.grpc.stream import STREAM_WINDOW, OrderedStream
from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable

    from inference_server.service import InferenceService, InferJob

log = logging.getLogger(__name__)

SERVICE_NAME = "inference.GRPCInferenceService"

Context = grpc.aio.ServicerContext[bytes, Any]


def status_of(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status of an exception reaching the edge (unexpected ones logged, INTERNAL)."""
    if isinstance(exc, ModelyardError):
        return GRPC_STATUS[exc.code], exc.message
    if isinstance(exc, DecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, f"malformed protobuf request: {exc}"
    log.exception("unexpected error in a gRPC call", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"


Guard: TypeAlias = Callable[[str | None], None]
"""A token check (:class:`~inference_server.auth.BearerAuth` methods) over ``authorization``."""


def authorization(context: Context) -> str | None:
    """The ``authorization`` metadata value of a call, if any."""
    for key, value in context.invocation_metadata() or ():
        if key == AUTHORIZATION:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


def unary(
    fn: Callable[[Any], Awaitable[Any]],
    request_type: Any,
    response_type: Any,
    guard: Guard | None = None,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A unary handler that checks ``guard``, parses the request, calls ``fn`` and maps errors
    to statuses."""
    parse = request_type.FromString

    async def handler(data: bytes, context: Context) -> Any:
        try:
            if guard is not None:
                guard(authorization(context))
            return await fn(parse(data))
        except Exception as exc:  # the edge: every error becomes a status
            code, message = status_of(exc)
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(
        handler, response_serializer=response_type.SerializeToString
    )


class InferenceServicer:
    """GRPCInferenceService over an :class:`InferenceService`."""

    def __init__(self, service: InferenceService, auth: BearerAuth | None = None) -> None:
        self._service = service
        self._auth = auth or BearerAuth()

    async def server_live(self, _: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self._service.server_live())

    async def server_ready(self, _: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._service.server_ready())

    async def model_ready(self, req: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=self._service.model_ready(req.name, req.version or None))

    async def server_metadata(self, _: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        meta = self._service.server_metadata()
        return pb.ServerMetadataResponse(
            name=meta.name, version=meta.version, extensions=meta.extensions
        )

    async def model_metadata(self, req: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        return convert.metadata_to_proto(
            self._service.model_metadata(req.name, req.version or None)
        )

    async def model_infer(self, req: pb.ModelInferRequest) -> pb.ModelInferResponse:
        try:
            request = convert.request_from_proto(req)
        except ModelyardError as exc:
            self._service.record_failure(req.model_name, req.model_version, exc)
            raise
        response = await self._service.infer(request)
        return convert.response_to_proto(response, raw=request.raw_output)

    async def model_config(self, req: pb.ModelConfigRequest) -> pb.ModelConfigResponse:
        return convert.config_to_proto(self._service.model_config(req.name, req.version or None))

    async def model_statistics(self, req: pb.ModelStatisticsRequest) -> pb.ModelStatisticsResponse:
        return convert.statistics_to_proto(self._service.model_statistics(req.name, req.version))

    async def repository_index(self, req: pb.RepositoryIndexRequest) -> pb.RepositoryIndexResponse:
        convert.check_repository_name(req.repository_name)
        return convert.index_to_proto(await self._service.repository_index(ready_only=req.ready))

    def _stream_start(self, data: bytes, busy: bool) -> InferJob | bytes:
        """Start one request of a stream: its job, or its error answer now."""
        req = None
        try:
            req = pb.ModelInferRequest.FromString(data)
            try:
                request = convert.request_from_proto(req)
            except ModelyardError as exc:
                self._service.record_failure(req.model_name, req.model_version, exc)
                raise
            return self._service.start_infer(request, busy)
        except Exception as exc:  # the edge: the error answers this request only
            _, message = status_of(exc)
        return convert.stream_error(message, req.model_name if req else "", req.id if req else "")

    async def _stream_settle(self, job: InferJob) -> bytes:
        """The answer bytes of a started request (an error answer if it failed)."""
        request = job.request
        try:
            response = await self._service.finish(job)
            return convert.stream_answer(response, raw=request.raw_output)
        except Exception as exc:  # the edge: the error answers this request only
            _, message = status_of(exc)
        return convert.stream_error(message, request.model_name, request.id)

    async def model_stream_infer(self, _: AsyncIterator[bytes], context: Context) -> None:
        """Answer a stream of requests, batched together, in request order."""
        if self._auth.inference_protected:
            try:
                self._auth.check_inference(authorization(context))
            except ModelyardError as exc:
                await context.abort(GRPC_STATUS[exc.code], exc.message)
        stream = OrderedStream(
            context, self._stream_start, self._stream_settle, self._service.abandon, STREAM_WINDOW
        )
        await stream.run()

    def handlers(self) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """The method table of ``inference.GRPCInferenceService`` without the admin calls
        (RepositoryModelLoad/Unload: :mod:`inference_server.grpc.admin`)."""
        # NOTE: no guard at all (not an open one) on inference unless a token is configured.
        inference = self._auth.check_inference if self._auth.inference_protected else None
        table: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "ServerLive": unary(self.server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
            "ServerReady": unary(self.server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
            "ModelReady": unary(self.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
            "ServerMetadata": unary(
                self.server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse
            ),
            "ModelMetadata": unary(
                self.model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse
            ),
            "ModelInfer": unary(
                self.model_infer, pb.ModelInferRequest, pb.ModelInferResponse, inference
            ),
            "ModelConfig": unary(self.model_config, pb.ModelConfigRequest, pb.ModelConfigResponse),
            "ModelStatistics": unary(
                self.model_statistics, pb.ModelStatisticsRequest, pb.ModelStatisticsResponse
            ),
            "RepositoryIndex": unary(
                self.repository_index, pb.RepositoryIndexRequest, pb.RepositoryIndexResponse
            ),
            # answers are written as bytes (convert.stream_answer): no serializer
            "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(self.model_stream_infer),
        }
        return table
