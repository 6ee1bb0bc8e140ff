"""Routing and the Open Inference Protocol REST handlers over :class:`InferenceService`.

:class:`HttpApi` is the handler the protocol calls for every request. Fixed paths are one
dict lookup; ``/v2/models/{m}[/versions/{v}][/action]`` and
``/v2/repository/models/{m}/{load|unload}`` are split once. Each handler is
convert -> delegate -> convert back; every error is translated in one place (:meth:`__call__`)
through :mod:`inference_server.http.errors`.

Routes: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
``/v2/models/{m}[/versions/{v}]`` (metadata), ``.../ready``, ``.../config``, ``.../stats``,
``POST .../infer``, ``GET /v2/models/{m}/versions/{v}/sketches`` (admin; drift sketches,
:mod:`inference_server.drift.reads`), ``POST /v2/repository/index``,
``/v2/repository/models/{m}/load``, ``/unload``, ``POST /v2/prediction_log/flush`` (admin;
every worker spools and ships its prediction log), plus the simple endpoints of
:mod:`inference_server.http.simple`.
Health answers are 200 (true) or 503 (false: a state that clears by itself).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeAlias
from urllib.parse import unquote

import msgspec

from inference_server.admin.service import AdminService
from inference_server.auth import AUTHORIZATION, BearerAuth
from inference_server.drift.reads import read_sketches
from inference_server.http import simple
from inference_server.http.errors import (
    domain_error_response,
    error_response,
    internal_error_response,
)
from inference_server.http.messages import BodyError, HttpRequest, HttpResponse, decoded_body
from inference_server.http.oip import HEADER_LENGTH, OCTET_STREAM, decode_infer, encode_infer
from inference_server.prediction_log.admin import FLUSH, FlushRequest
from modelyard.errors import InvalidArgument, ModelyardError
from modelyard.model_repository import Route
from modelyard.models import Scalar

if TYPE_CHECKING:
    from inference_server.service import InferenceService

Fixed: TypeAlias = Callable[["InferenceService", HttpRequest], Awaitable[HttpResponse]]
ModelAction: TypeAlias = Callable[[HttpRequest, str, str | None], Awaitable[HttpResponse]]

_EMPTY_OK: Final = HttpResponse(200, b"")
_NOT_READY: Final = HttpResponse(503, b"")
_TOO_DEEP: Final = "request JSON nests too deeply (limit: the decoder's recursion depth)"
_MODELS: Final = b"/v2/models/"
_REPOSITORY_MODELS: Final = b"/v2/repository/models/"
_AUTHORIZATION: Final = AUTHORIZATION.encode()
_REPOSITORY_WORKERS: Final = b"/v2/repository/workers"
_LOG_FLUSH: Final = b"/v2/prediction_log/flush"
_INFERENCE_PATHS: Final = frozenset({b"/predict", b"/predict/batch"})
_MODEL_PATHS_KEPT: Final = 256


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of the small control bodies."""


class IndexBody(_Body, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v2/repository/index`` (optional)."""

    ready: bool = False


class ControlBody(_Body, kw_only=True, forbid_unknown_fields=True):
    """Body of ``POST /v2/repository/models/{m}/load|unload`` (optional)."""

    parameters: dict[str, Scalar] = {}


class RoutesBody(_Body, kw_only=True, forbid_unknown_fields=True):
    """Body of ``PUT /v2/models/{m}/routes``: the ``routes`` shape of config.json."""

    routes: tuple[Route, ...]


_encode = msgspec.json.Encoder().encode
_decode_index = msgspec.json.Decoder(IndexBody).decode
_decode_control = msgspec.json.Decoder(ControlBody).decode
_decode_routes = msgspec.json.Decoder(RoutesBody).decode


async def _live(service: InferenceService, request: HttpRequest) -> HttpResponse:
    return _EMPTY_OK if service.server_live() else _NOT_READY


async def _ready(service: InferenceService, request: HttpRequest) -> HttpResponse:
    return _EMPTY_OK if service.server_ready() else _NOT_READY


async def _server_metadata(service: InferenceService, request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, _encode(service.server_metadata()))


async def _index(service: InferenceService, request: HttpRequest) -> HttpResponse:
    body = _decode_index(request.body) if request.body.strip() else IndexBody()
    return HttpResponse(200, _encode(await service.repository_index(ready_only=body.ready)))


_FIXED: Final[dict[bytes, tuple[bytes, Fixed]]] = {
    b"/v2": (b"GET", _server_metadata),
    b"/v2/health/live": (b"GET", _live),
    b"/v2/health/ready": (b"GET", _ready),
    b"/v2/repository/index": (b"POST", _index),
    b"/predict": (b"POST", simple.predict),
    b"/predict/batch": (b"POST", simple.predict_batch),
    b"/health": (b"GET", simple.health),
}


class HttpApi:
    """The request handler of the HTTP adapter (see the module docstring for the routes)."""

    def __init__(
        self,
        service: InferenceService,
        max_body_bytes: int,
        auth: BearerAuth | None = None,
        admin: AdminService | None = None,
    ) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes
        self._admin = admin or AdminService.local(service, auth)
        self._auth = self._admin.auth
        # NOTE: decided once: without an inference token the hot path checks nothing.
        self._guard_inference = self._auth.inference_protected
        self._model_actions: dict[str, tuple[bytes, ModelAction]] = {
            "": (b"GET", self._model_metadata),
            "ready": (b"GET", self._model_ready),
            "infer": (b"POST", self._infer),
            "config": (b"GET", self._model_config),
            "stats": (b"GET", self._model_stats),
            "routes": (b"", self._routes),
            "sketches": (b"GET", self._sketches),
        }
        # Model paths already resolved: path -> (method or b"", handler, model, version).
        # Resolving is a pure function of the path, so a hit skips the split and unquoting
        # (issue 21: ~1 us of every infer); only paths that resolved are kept.
        self._model_paths: dict[bytes, tuple[bytes, ModelAction, str, str | None]] = {}

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answer one request; never raises."""
        try:
            return await self._route(request)
        except ModelyardError as exc:
            return domain_error_response(exc)
        except (_RouteError, BodyError) as exc:
            return error_response(exc.status, exc.message)
        except msgspec.ValidationError as exc:
            return error_response(400, f"invalid request body: {exc}")
        except msgspec.DecodeError as exc:
            return error_response(400, f"malformed JSON: {exc}")
        except RecursionError:  # msgspec's nesting cap (pathological bodies): not our bug
            return error_response(400, _TOO_DEEP)
        except Exception as exc:
            return internal_error_response(exc)

    def _route(self, request: HttpRequest) -> Awaitable[HttpResponse]:
        path = request.path
        known = self._model_paths.get(path)
        if known is not None:  # a model path seen before (every infer after the first)
            if known[0]:
                _allow(request, known[0])
            return known[1](request, known[2], known[3])
        fixed = _FIXED.get(path)
        if fixed is not None:
            _allow(request, fixed[0])
            if self._guard_inference and path in _INFERENCE_PATHS:
                self._auth.check_inference(request.headers.get(_AUTHORIZATION))
            return fixed[1](self._service, request)
        if path.startswith(_MODELS):
            return self._model_route(request, path)
        if path == _LOG_FLUSH:
            _allow(request, b"POST")
            return self._flush_log(request)
        if path == _REPOSITORY_WORKERS:
            _allow(request, b"GET")
            return self._workers(request)
        if path.startswith(_REPOSITORY_MODELS):
            return self._repository_route(request, _segments(path[len(_REPOSITORY_MODELS) :]))
        raise _no_route(request)

    def _model_route(self, request: HttpRequest, path: bytes) -> Awaitable[HttpResponse]:
        parts = _segments(path[len(_MODELS) :])
        version: str | None = None
        if len(parts) >= 3 and parts[1] == "versions":
            version = parts[2]
            parts = [parts[0], *parts[3:]]
        if not parts[0] or len(parts) > 2 or version == "":
            raise _no_route(request)
        action = self._model_actions.get(parts[1] if len(parts) == 2 else "")
        if action is None:
            raise _no_route(request)
        if len(self._model_paths) >= _MODEL_PATHS_KEPT:
            self._model_paths.clear()  # bounded: a client cannot grow it by varying paths
        self._model_paths[path] = (action[0], action[1], parts[0], version)
        if action[0]:  # else the handler takes several methods and checks them itself
            _allow(request, action[0])
        return action[1](request, parts[0], version)

    def _repository_route(self, request: HttpRequest, parts: list[str]) -> Awaitable[HttpResponse]:
        if len(parts) != 2 or not parts[0] or parts[1] not in ("load", "unload"):
            raise _no_route(request)
        _allow(request, b"POST")
        return self._control(request, parts[0], parts[1])

    async def _infer(self, request: HttpRequest, model: str, version: str | None) -> HttpResponse:
        if self._guard_inference:
            self._auth.check_inference(request.headers.get(_AUTHORIZATION))
        header_length = request.headers.get(HEADER_LENGTH)
        try:
            body = decoded_body(request, self._max_body_bytes)
            infer_request, binary = decode_infer(body, header_length, model, version)
        except (msgspec.DecodeError, RecursionError) as exc:
            reason = _TOO_DEEP if isinstance(exc, RecursionError) else str(exc)
            error = InvalidArgument(f"invalid infer request body: {reason}")
            self._service.record_failure(model, version or "", error)
            raise error from None
        except ModelyardError as exc:
            self._service.record_failure(model, version or "", exc)
            raise
        response = await self._service.infer(infer_request)
        body, head = encode_infer(response, binary, infer_request.raw_output)
        if head is None:
            return HttpResponse(200, body)
        return HttpResponse(200, body, OCTET_STREAM, ((HEADER_LENGTH, b"%d" % head),))

    async def _model_metadata(
        self, request: HttpRequest, model: str, version: str | None
    ) -> HttpResponse:
        return HttpResponse(200, _encode(self._service.model_metadata(model, version)))

    async def _model_ready(
        self, request: HttpRequest, model: str, version: str | None
    ) -> HttpResponse:
        return _EMPTY_OK if self._service.model_ready(model, version) else _NOT_READY

    async def _model_config(
        self, request: HttpRequest, model: str, version: str | None
    ) -> HttpResponse:
        return HttpResponse(200, _encode(self._service.model_config(model, version)))

    async def _model_stats(
        self, request: HttpRequest, model: str, version: str | None
    ) -> HttpResponse:
        stats = self._service.model_statistics(model, version or "")
        return HttpResponse(200, _encode({"model_stats": stats}))

    async def _sketches(
        self, request: HttpRequest, model: str, version: str | None
    ) -> HttpResponse:
        authorization = request.headers.get(_AUTHORIZATION)
        self._auth.check_admin(authorization)  # 401 before any other complaint
        answer = await read_sketches(
            self._service, self._admin, (model, version), request.query, authorization
        )
        return HttpResponse(200, _encode(answer))

    async def _control(self, request: HttpRequest, model: str, action: str) -> HttpResponse:
        token = request.headers.get(_AUTHORIZATION)
        self._auth.check_admin(token)
        body = _decode_control(request.body) if request.body.strip() else ControlBody()
        if action == "load":
            loaded = await self._admin.load(model, token, body.parameters)
            answer = {
                "model": model,
                "versions": loaded.value.versions,
                "workers_applied": loaded.workers_applied,
            }
        else:
            answer = {"model": model, "workers_applied": await self._admin.unload(model, token)}
        return HttpResponse(200, _encode(answer))

    async def _routes(self, request: HttpRequest, model: str, version: str | None) -> HttpResponse:
        if version is not None:
            raise _no_route(request)
        token = request.headers.get(_AUTHORIZATION)
        if request.method == b"GET":
            done = await self._admin.routes(model, token)
        elif request.method == b"PUT":
            self._auth.check_admin(token)
            body = _decode_routes(request.body)
            done = await self._admin.set_routes(model, body.routes, token)
        else:
            raise _RouteError(405, f"{request.path.decode(errors='replace')} allows GET and PUT")
        answer = {
            "model": model,
            "routes": done.value.routes,
            "workers_applied": done.workers_applied,
        }
        return HttpResponse(200, _encode(answer))

    async def _flush_log(self, request: HttpRequest) -> HttpResponse:
        done = await self._admin.call(FLUSH, FlushRequest(), request.headers.get(_AUTHORIZATION))
        answer = msgspec.structs.asdict(done.value) | {"workers_applied": done.workers_applied}
        return HttpResponse(200, _encode(answer))

    async def _workers(self, request: HttpRequest) -> HttpResponse:
        token = request.headers.get(_AUTHORIZATION)
        done = await self._admin.call("repository.workers", None, token)
        return HttpResponse(
            200, _encode({"workers": done.value, "workers_applied": done.workers_applied})
        )


class _RouteError(Exception):
    """No route for the path (404) or not for this method (405); not a domain error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _no_route(request: HttpRequest) -> _RouteError:
    method = request.method.decode(errors="replace")
    return _RouteError(404, f"no route for {method} {request.path.decode(errors='replace')}")


def _allow(request: HttpRequest, method: bytes) -> None:
    if request.method != method:
        raise _RouteError(
            405,
            f"{request.path.decode(errors='replace')} allows only {method.decode()}, "
            f"not {request.method.decode(errors='replace')}",
        )


def _segments(rest: bytes) -> list[str]:
    # Split before unquoting: ``%2F`` stays inside its segment (and a model name holding it
    # is then refused by the naming rule) instead of moving the route.
    parts = rest.decode(errors="replace").split("/")
    return [unquote(p) if "%" in p else p for p in parts]
