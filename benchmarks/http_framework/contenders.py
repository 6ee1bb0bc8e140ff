"""HTTP stacks compared before choosing the server's HTTP path (one process, uvloop).

Usage: ``python contenders.py NAME PORT MODEL_DIR`` where NAME is one of

- ``asgi-echo``: raw ASGI app on uvicorn (httptools, uvloop), fixed JSON answer.
- ``asgi-ort``: raw ASGI + msgspec JSON + onnxruntime per request on uvicorn.
- ``proto-echo``: ``inference_server.http.protocol`` (asyncio.Protocol + httptools), fixed answer.
- ``proto-ort``: the same protocol + msgspec JSON + onnxruntime per request.
- ``litestar-ort``: Litestar (msgspec-native) + onnxruntime per request on uvicorn.
- ``fastapi-naive``: FastAPI + pydantic + native LightGBM per request (the issue's baseline).
- ``modelyard``: the whole server (``inference_server.app.InferenceServer``: HTTP adapter,
  validation, Prometheus metrics, micro-batching with the model's default config; gRPC and
  metrics listening too), the model published in a repository.

Every ORT/LightGBM contender answers a one-row OIP-shaped JSON request
(``{"inputs": [{"name": "input", "shape": [1, 32], "datatype": "FP32", "data": [...]}]}``).
"""

from __future__ import annotations

import asyncio
import gc
import pathlib
import sys
from typing import Any

import litestar
import msgspec
import numpy as np
from pydantic import BaseModel

ECHO = b'{"model_name":"m","outputs":[]}'


class _Tensor(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class _Request(msgspec.Struct):
    inputs: list[_Tensor]


class PydanticTensor(BaseModel):
    """The naive baseline's request tensor (pydantic, as a FastAPI user would write it)."""

    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class PydanticRequest(BaseModel):
    """The naive baseline's request."""

    inputs: list[PydanticTensor]


_decode = msgspec.json.Decoder(_Request).decode
_encode = msgspec.json.Encoder().encode


def _ort_answer(session: Any, body: bytes) -> bytes:
    tensor = _decode(body).inputs[0]
    x = np.asarray(tensor.data, dtype=np.float32).reshape(tensor.shape)
    label, proba = session.run(None, {"input": x})
    return _encode(
        {
            "model_name": "reference",
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [1], "data": label.tolist()},
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": list(proba.shape),
                    "data": proba.ravel().tolist(),
                },
            ],
        }
    )


def _session(model_dir: pathlib.Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(model_dir / "reference.onnx"), options)


def _asgi_app(session: Any | None) -> Any:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json")],
    }

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = ECHO if session is None else _ort_answer(session, body)
        await send(start)
        await send({"type": "http.response.body", "body": answer})

    return app


def _fastapi_app(model_dir: pathlib.Path) -> Any:
    import lightgbm
    from fastapi import FastAPI

    booster = lightgbm.Booster(model_file=str(model_dir / "reference.txt"))
    api = FastAPI()

    @api.post("/v2/models/reference/infer")
    async def infer(request: PydanticRequest) -> dict[str, Any]:
        x = np.asarray(request.inputs[0].data, dtype=np.float64).reshape(1, -1)
        p = float(booster.predict(x, num_threads=1)[0])
        return {
            "model_name": "reference",
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [1], "data": [int(p > 0.5)]},
                {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [1 - p, p]},
            ],
        }

    return api


def _litestar_app(model_dir: pathlib.Path) -> Any:
    session = _session(model_dir)

    @litestar.post("/v2/models/reference/infer", status_code=200)
    async def infer(request: litestar.Request[Any, Any, Any]) -> litestar.Response[bytes]:
        body = await request.body()
        return litestar.Response(_ort_answer(session, body), media_type="application/json")

    return litestar.Litestar([infer], debug=False, logging_config=None)


async def _serve_protocol(port: int, session: Any | None) -> None:
    from inference_server.http.messages import HttpRequest, HttpResponse
    from inference_server.http.server import serve
    from modelyard.settings import ServerSettings

    async def handler(request: HttpRequest) -> HttpResponse:
        if session is None:
            return HttpResponse(200, ECHO)
        return HttpResponse(200, _ort_answer(session, request.body))

    await serve(handler, "127.0.0.1", port, ServerSettings())
    await asyncio.Event().wait()


async def _serve_modelyard(port: int, model_dir: pathlib.Path) -> None:
    import shutil

    from inference_server.app import InferenceServer
    from modelyard.model_repository import publish_version
    from modelyard.settings import ServerSettings, Settings

    repo = model_dir / "repository"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir()
    publish_version(repo, "reference", 1, {"model.onnx": model_dir / "reference.onnx"})
    settings = Settings(
        server=ServerSettings(
            model_repository=str(repo),
            http_port=port,
            grpc_port=0,
            metrics_port=0,
            control_mode="none",
        )
    )
    server = InferenceServer(settings)
    await server.start()
    gc.freeze()  # as ``modelyard serve`` does after start (short full collections)
    await asyncio.Event().wait()


def main(name: str, port: int, model_dir: pathlib.Path) -> None:
    """Run one contender until killed."""
    import uvicorn
    import uvloop

    if name == "modelyard":
        uvloop.run(_serve_modelyard(port, model_dir))
        return
    if name.startswith("proto-"):
        session = _session(model_dir) if name == "proto-ort" else None
        uvloop.run(_serve_protocol(port, session))
        return
    if name == "fastapi-naive":
        app = _fastapi_app(model_dir)
    elif name == "litestar-ort":
        app = _litestar_app(model_dir)
    else:
        app = _asgi_app(_session(model_dir) if name == "asgi-ort" else None)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        interface="asgi3",
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3]))
