"""A real inference server (gRPC + HTTP on port 0) driven synchronously, for hypothesis tests.

Hypothesis runs examples synchronously; the server lives on a private event loop
(``asyncio.Runner``) that runs while each example's client calls run on it, so the one server
process sees every generated example, and a test can assert it still answers afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import numpy as np

from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings, Settings

from .conftest import classifier_bytes, classifier_reference

T = TypeVar("T")
SEED = 1
GOOD_X = np.array([[0.5, -1.0, 2.0, 0.25], [1.0, 0.0, -0.5, 3.0]], dtype=np.float32)
RETRYABLE_OR_CLIENT = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}
"""The INVALID_ARGUMENT class of answers: the client's fault, never the server's."""


class Live:
    """The running server and async clients, driven from synchronous code."""

    def __init__(self, runner: asyncio.Runner, server: InferenceServer) -> None:
        self.runner = runner
        self.server = server
        self.http_port = server.http_port or 0
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.http_port}", timeout=20)
        self.channel = runner.run(_channel(server.grpc_port))
        self.stub = pbg.GRPCInferenceServiceStub(self.channel)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop."""
        return self.runner.run(coro)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One HTTP request through httpx."""
        return self.run(self.http.request(method, path, **kw))

    def raw(self, data: bytes, timeout: float = 20.0) -> bytes:
        """Send raw bytes on a fresh connection, half-close, return all the server answered."""
        return self.run(_raw(self.http_port, data, limit_s=timeout))

    def grpc(
        self, method: str, request: Any, metadata: tuple[tuple[str, str], ...] = ()
    ) -> tuple[grpc.StatusCode, str, Any]:
        """Call one unary gRPC method: (code, details, response or None)."""
        return self.run(_call(getattr(self.stub, method), request, metadata))

    def assert_serves(self) -> None:
        """A valid request on each protocol is answered correctly."""
        expected = classifier_reference(SEED, GOOD_X)
        answer = self.request("POST", "/v2/models/clf/infer", json=good_json())
        assert answer.status_code == 200, answer.text
        probabilities = {o["name"]: o for o in answer.json()["outputs"]}["probabilities"]
        np.testing.assert_allclose(
            np.array(probabilities["data"]).reshape(-1, 2), expected, rtol=1e-5
        )
        code, details, response = self.grpc("ModelInfer", good_proto())
        assert code == grpc.StatusCode.OK, details
        assert_good_proto_answer(response)


def assert_good_proto_answer(response: pb.ModelInferResponse) -> None:
    """``response`` is the correct answer to :func:`good_proto`."""
    index = [o.name for o in response.outputs].index("probabilities")
    got = np.frombuffer(response.raw_output_contents[index], dtype=np.float32)
    np.testing.assert_allclose(got.reshape(-1, 2), classifier_reference(SEED, GOOD_X), rtol=1e-5)


def good_json() -> dict[str, Any]:
    """A valid OIP JSON infer request for ``clf``."""
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(GOOD_X.shape),
                "datatype": "FP32",
                "data": GOOD_X.ravel().tolist(),
            }
        ]
    }


def good_proto() -> pb.ModelInferRequest:
    """A valid gRPC infer request for ``clf`` (raw contents)."""
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP32", shape=list(GOOD_X.shape)
    )
    return pb.ModelInferRequest(
        model_name="clf", inputs=[tensor], raw_input_contents=[GOOD_X.tobytes()]
    )


def statuses(answer: bytes) -> list[int]:
    """The status codes of every HTTP response in ``answer``."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


async def _channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")


async def _call(
    method: Any, request: Any, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str, Any]:
    try:
        response = await method(request, timeout=20, metadata=metadata or None)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or "", None
    return grpc.StatusCode.OK, "", response


async def _raw(port: int, data: bytes, *, limit_s: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        with contextlib.suppress(ConnectionError):
            writer.write(data)
            await writer.drain()
            writer.write_eof()
        chunks = []
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(limit_s):
                while chunk := await reader.read(65536):
                    chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


@contextlib.contextmanager
def live_server(repo: Path, **settings: Any) -> Iterator[Live]:
    """Model ``clf`` version 1 in ``repo``, served on both protocols (explicit control mode)."""
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(SEED)})
    options: dict[str, Any] = {
        "model_repository": str(repo),
        "grpc_port": 0,
        "http_port": 0,
        "metrics_port": None,
        "control_mode": "explicit",
        "max_request_bytes": 1024 * 1024,
        "drain_timeout_s": 2.0,
    } | settings
    with asyncio.Runner() as runner:
        server = InferenceServer(Settings(server=ServerSettings(**options)))
        runner.run(server.start())
        live = Live(runner, server)
        try:
            yield live
        finally:
            runner.run(live.http.aclose())
            runner.run(live.channel.close(None))
            runner.run(server.stop())
