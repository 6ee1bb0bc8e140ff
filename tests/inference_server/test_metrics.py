"""Prometheus metrics on the metrics port of a real server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np
import pytest

from inference_server.grpc._generated import grpc_service_pb2 as pb
from tests.inference_server.held import HeldRun

if TYPE_CHECKING:
    from inference_server.app import InferenceServer
    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg


async def _scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    body = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, text = body.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    return text


def _value(text: str, prefix: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert lines, prefix
    return float(lines[0].rsplit(" ", 1)[1])


async def test_requests_failures_latency_batches_and_events(
    server: InferenceServer, stub: pbg.GRPCInferenceServiceStub
) -> None:
    x = np.zeros((3, 4), np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    good = pb.ModelInferRequest(model_name="clf", inputs=[tensor], raw_input_contents=[x.tobytes()])
    for _ in range(5):
        await stub.ModelInfer(good)
    bad = pb.ModelInferRequest(model_name="clf", inputs=[tensor], raw_input_contents=[b"x"])
    with pytest.raises(Exception, match="raw data"):
        await stub.ModelInfer(bad)
    assert server.metrics_port is not None
    text = await _scrape(server.metrics_port)
    labels = 'model="clf",version="1"'
    assert _value(text, f"modelyard_inference_requests_total{{{labels}}}") == 5
    refused = 'modelyard_inference_failures_total{code="invalid_argument",model="clf",version=""}'
    assert _value(text, refused) == 1  # refused by the adapter, before the service
    assert _value(text, f"modelyard_inference_request_seconds_count{{{labels}}}") == 5
    assert _value(text, f"modelyard_inference_batch_rows_sum{{{labels}}}") == 15
    assert _value(text, f'modelyard_model_events_total{{event="loaded",{labels}}}') == 1
    assert "modelyard_inference_queue_seconds_bucket" in text


# NOTE: small runs may go inline on an idle loop (docs/architecture.md), and with idle time on
# the core a batch does not wait for more rows (inference_server/saturation.py): then 40 quick
# requests need not share a run at all; the property is about batched runs, so batch always.
# Even then, on a slow machine each run could end before the next request arrives (one CI run
# saw 40 runs of one row each), so the first run is held until every request has queued.
@pytest.mark.parametrize(
    "server", [{"batch_inline_max_us": 0, "batch_adaptive": False}], indirect=True
)
async def test_queue_wait_is_observed_once_per_request_even_when_batched(
    server: InferenceServer, stub: pbg.GRPCInferenceServiceStub
) -> None:
    batcher = server.manager.resolve("clf", None).batcher
    assert batcher is not None
    held = HeldRun(batcher)
    x = np.zeros((1, 4), np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    good = pb.ModelInferRequest(model_name="clf", inputs=[tensor], raw_input_contents=[x.tobytes()])
    calls = asyncio.gather(*(stub.ModelInfer(good) for _ in range(40)))
    await held.release_when_queued(39)  # all but the held run's own request
    await calls
    assert server.metrics_port is not None
    text = await _scrape(server.metrics_port)
    labels = 'model="clf",version="1"'
    assert _value(text, f"modelyard_inference_queue_seconds_count{{{labels}}}") == 40
    runs = _value(text, f"modelyard_inference_batch_rows_count{{{labels}}}")
    assert runs == 2  # the held run, then the 39 queued behind it in one; each wait counted
