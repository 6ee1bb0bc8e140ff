"""Score traffic against a running inference server over gRPC and HTTP, as a client would.

Closed loop: ``concurrency`` coroutines each send one row per request, as fast as answers come,
for ``seconds``; latency is measured per request on the client. The gRPC client sends raw
little-endian tensors (``raw_input_contents``); the HTTP client sends Open Inference Protocol
JSON. Both also score a batch once so the demo can compare the served answers with the native
model's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Awaitable, Callable

import grpc
import httpx
import numpy as np

from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pb_grpc

PROBABILITIES = "probabilities"


@dataclasses.dataclass(frozen=True)
class LoadStats:
    """What one load run measured."""

    protocol: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """One human-readable line."""
        return (
            f"{self.protocol:>5}: {self.throughput:8,.0f} req/s  p50 {self.p50_ms:6.2f} ms  "
            f"p90 {self.p90_ms:6.2f} ms  p99 {self.p99_ms:6.2f} ms  errors {self.errors}"
        )


def _grpc_request(model: str, rows: np.ndarray) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input", datatype="FP32", shape=list(rows.shape)
    )
    return pb.ModelInferRequest(
        model_name=model, inputs=[tensor], raw_input_contents=[rows.astype("<f4").tobytes()]
    )


def _grpc_probabilities(response: pb.ModelInferResponse) -> np.ndarray:
    for index, output in enumerate(response.outputs):
        if output.name == PROBABILITIES:
            values = np.frombuffer(response.raw_output_contents[index], dtype="<f4")
            return values.reshape(tuple(output.shape))
    raise ValueError(f"response has no {PROBABILITIES!r} output")


def _http_body(rows: np.ndarray) -> dict[str, object]:
    return {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": list(rows.shape),
                "data": rows.astype(np.float32).ravel().tolist(),
            }
        ],
        "outputs": [{"name": PROBABILITIES}],
    }


def _http_probabilities(answer: dict[str, object]) -> np.ndarray:
    outputs = answer["outputs"]
    assert isinstance(outputs, list)
    for output in outputs:
        if output["name"] == PROBABILITIES:
            return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    raise ValueError(f"response has no {PROBABILITIES!r} output")


async def grpc_probabilities(address: str, model: str, rows: np.ndarray) -> np.ndarray:
    """The served probabilities of ``rows`` (one request) over gRPC."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        return _grpc_probabilities(await stub.ModelInfer(_grpc_request(model, rows)))


async def http_probabilities(base_url: str, model: str, rows: np.ndarray) -> np.ndarray:
    """The served probabilities of ``rows`` (one request) over HTTP/JSON."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        answer = await client.post(f"/v2/models/{model}/infer", json=_http_body(rows))
        answer.raise_for_status()
        return _http_probabilities(answer.json())


def _stats(protocol: str, latencies: list[float], errors: int, seconds: float) -> LoadStats:
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return LoadStats(protocol, len(latencies), errors, seconds, float(p50), float(p90), float(p99))


async def _closed_loop(
    send: Callable[[int], Awaitable[None]], requests: int, seconds: float, concurrency: int
) -> tuple[list[float], int]:
    """``concurrency`` users call ``send(i)`` back to back (i cycles over ``requests``)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def user(offset: int) -> None:
        nonlocal errors
        index = offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await send(index % requests)
            except (grpc.RpcError, httpx.HTTPError):
                errors += 1
                continue
            finally:
                index += concurrency
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(user(i) for i in range(concurrency)))
    return latencies, errors


async def grpc_load(
    address: str, model: str, rows: np.ndarray, seconds: float, concurrency: int
) -> LoadStats:
    """Closed-loop single-row load over gRPC (requests built once, before the clock starts)."""
    requests = [_grpc_request(model, row[None, :]) for row in rows[:256]]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

        async def send(index: int) -> None:
            await stub.ModelInfer(requests[index])

        latencies, errors = await _closed_loop(send, len(requests), seconds, concurrency)
    return _stats("gRPC", latencies, errors, seconds)


async def http_load(
    base_url: str, model: str, rows: np.ndarray, seconds: float, concurrency: int
) -> LoadStats:
    """Closed-loop single-row load over HTTP with OIP JSON (bodies encoded once)."""
    bodies = [json.dumps(_http_body(row[None, :])).encode() for row in rows[:256]]
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def send(index: int) -> None:
            answer = await client.post(
                f"/v2/models/{model}/infer", content=bodies[index], headers=headers
            )
            answer.raise_for_status()

        latencies, errors = await _closed_loop(send, len(bodies), seconds, concurrency)
    return _stats("HTTP", latencies, errors, seconds)
