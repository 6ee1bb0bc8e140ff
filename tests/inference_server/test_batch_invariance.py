"""Batch invariance through the real server: a row's answer never depends on its batch.

Every kind the converters produce (``tests/converters/kinds.py``), at the default precision
(FP32 inputs here) and as a double-precision graph, is converted and served by one real
server (gRPC on port 0, default batching). A hypothesis property sends random batch
compositions concurrently -- requests of 1-4 rows drawn from a sample, so the micro-batcher
merges them into runs of many sizes -- and compares each row's output bytes with the bytes
of the same row sent alone. No platform property number is assigned to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification, make_regression

from converters import convert
from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings, Settings
from tests.converters.kinds import CLASSIFIERS, REGRESSORS, needs_bucket, with_bucket
from tests.inference_server.held import HeldRun

KINDS = [(k, True) for k in sorted(CLASSIFIERS)] + [(k, False) for k in sorted(REGRESSORS)]
PRECISIONS = ("auto", "float64")
"""``auto`` serves FP32 inputs for these data; ``float64`` builds double-precision graphs."""
SERVED = [(kind, classification, p) for p in PRECISIONS for kind, classification in KINDS]
pytestmark = pytest.mark.slow  # trains and converts models

POOL = 48
"""Sample rows per kind that requests draw from."""


class Served:
    """One server holding every kind, with a gRPC stub, driven from synchronous code."""

    def __init__(self, runner: asyncio.Runner, server: InferenceServer) -> None:
        self.runner = runner
        self.server = server
        self.channel = runner.run(_channel(server.grpc_port))
        self.stub = pbg.GRPCInferenceServiceStub(self.channel)
        self.rows: dict[str, pd.DataFrame] = {}
        self.types: dict[str, dict[str, str]] = {}
        self.alone: dict[tuple[str, int], list[bytes]] = {}

    def infer(
        self, model: str, frames: list[pd.DataFrame], *, held: bool = False
    ) -> list[list[bytes]]:
        """Send every frame as one request, all at once; each request's per-row output bytes.

        ``held``: the first session run waits until every other request has queued behind it,
        so that they are batched whatever the machine's speed (``max_batch_size`` rows a run).
        """

        types = self.types[model]

        async def send() -> list[pb.ModelInferResponse]:
            calls = [self.stub.ModelInfer(_request(model, f, types), timeout=30) for f in frames]
            return list(await asyncio.gather(*calls))

        async def send_held() -> list[pb.ModelInferResponse]:
            batcher = self.server.manager.resolve(model, None).batcher
            assert batcher is not None
            with HeldRun(batcher) as hold:
                answers = asyncio.ensure_future(send())
                await hold.release_when_queued(len(frames) - 1)
                return await answers

        answers = self.runner.run(send_held() if held else send())
        return [_row_bytes(a, len(f)) for a, f in zip(answers, frames, strict=True)]

    def alone_bytes(self, model: str, index: int) -> bytes:
        """The output bytes of one sample row sent on its own (cached)."""
        key = (model, index)
        if key not in self.alone:
            self.alone[key] = self.infer(model, [self.rows[model].iloc[[index]]])[0]
        return self.alone[key][0]


async def _channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _floats(name: str, values: np.ndarray, datatype: str, shape: list[int]) -> Any:
    if datatype == "FP64":
        contents = pb.InferTensorContents(fp64_contents=values.astype(np.float64).ravel().tolist())
    else:
        contents = pb.InferTensorContents(fp32_contents=values.astype(np.float32).ravel().tolist())
    return pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=contents
    )


def _tensor(name: str, column: pd.Series, datatype: str) -> Any:
    if not pd.api.types.is_numeric_dtype(column):
        values = [str(v).encode() for v in column]
        contents = pb.InferTensorContents(bytes_contents=values)
        return pb.ModelInferRequest.InferInputTensor(
            name=name, datatype="BYTES", shape=[len(column), 1], contents=contents
        )
    return _floats(name, column.to_numpy(np.float64), datatype, [len(column), 1])


def _request(model: str, frame: pd.DataFrame, types: dict[str, str]) -> pb.ModelInferRequest:
    if "bucket" in frame.columns:  # mixed types: one input per column
        inputs = [_tensor(str(c), frame[c], types[str(c)]) for c in frame.columns]
    else:
        matrix = frame.to_numpy(np.float64)
        inputs = [_floats("input", matrix, types["input"], list(matrix.shape))]
    return pb.ModelInferRequest(model_name=model, inputs=inputs)


def _values(tensor: Any) -> np.ndarray:
    contents = tensor.contents
    if tensor.datatype == "FP32":
        return np.asarray(contents.fp32_contents, dtype=np.float32)
    if tensor.datatype == "FP64":
        return np.asarray(contents.fp64_contents, dtype=np.float64)
    if tensor.datatype == "INT64":
        return np.asarray(contents.int64_contents, dtype=np.int64)
    if tensor.datatype == "BYTES":
        return np.asarray([b.hex() for b in contents.bytes_contents]).astype("S")
    raise AssertionError(f"unexpected output datatype {tensor.datatype}")


def _row_bytes(answer: pb.ModelInferResponse, rows: int) -> list[bytes]:
    """Per row, the concatenated exact bytes of every output (batch dimension first)."""
    per_row: list[list[bytes]] = [[] for _ in range(rows)]
    for tensor in answer.outputs:
        assert tensor.shape[0] == rows, (tensor.name, list(tensor.shape))
        values = _values(tensor).reshape(rows, -1)
        for i in range(rows):
            per_row[i].append(tensor.name.encode() + b"=" + values[i].tobytes())
    return [b"|".join(parts) for parts in per_row]


def _fit(
    kind: str, classification: bool, precision: str
) -> tuple[bytes, dict[str, str], pd.DataFrame]:
    if classification:
        x, y = make_classification(
            n_samples=200, n_features=6, n_informative=4, n_classes=3,
            n_clusters_per_class=1, random_state=0,
        )  # fmt: skip
    else:
        x, y = make_regression(n_samples=200, n_features=6, noise=3.0, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame = with_bucket(frame) if needs_bucket(kind) else frame
    model = (CLASSIFIERS if classification else REGRESSORS)[kind](frame, y, 12)
    result = convert(model, frame, precision=precision)
    types = {spec.name: spec.datatype for spec in result.signature.inputs}
    return result.onnx, types, frame.iloc[:POOL].reset_index(drop=True)


def _name(index: int) -> str:
    return f"kind-{index:02d}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    repo: Path = tmp_path_factory.mktemp("kinds")
    frames, types = {}, {}
    for index, (kind, classification, precision) in enumerate(SERVED):
        data, types[_name(index)], frames[_name(index)] = _fit(kind, classification, precision)
        publish_version(repo, _name(index), 1, {"model.onnx": data})
    options = Settings(
        server=ServerSettings(
            model_repository=str(repo),
            grpc_port=0,
            http_port=None,
            metrics_port=None,
            control_mode="explicit",
            max_request_bytes=1024 * 1024,
            drain_timeout_s=2.0,
        )
    )
    with asyncio.Runner() as runner:
        server = InferenceServer(options)
        runner.run(server.start())
        live = Served(runner, server)
        live.rows = frames
        live.types = types
        try:
            yield live
        finally:
            runner.run(live.channel.close(None))
            runner.run(server.stop())


@st.composite
def compositions(draw: st.DrawFn) -> tuple[int, list[list[int]]]:
    """A kind and a list of requests, each a list of 1-4 sample row indices."""
    kind = draw(st.integers(0, len(SERVED) - 1))
    requests = draw(
        st.lists(st.lists(st.integers(0, POOL - 1), min_size=1, max_size=4), min_size=1,
                 max_size=24)
    )  # fmt: skip
    return kind, requests


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=compositions())
def test_row_answers_are_bit_identical_in_any_batch_composition(
    served: Served, case: tuple[int, list[list[int]]]
) -> None:
    kind, requests = case
    model = _name(kind)
    frame = served.rows[model]
    answers = served.infer(model, [frame.iloc[rows] for rows in requests])
    for rows, answer in zip(requests, answers, strict=True):
        for index, got in zip(rows, answer, strict=True):
            assert got == served.alone_bytes(model, index), (SERVED[kind], index, rows)


@pytest.mark.parametrize("index", range(len(SERVED)), ids=[f"{k}-{p}" for k, _, p in SERVED])
def test_every_kind_and_precision_is_batched_and_answers_each_row_as_alone(
    served: Served, index: int
) -> None:
    """A burst of single-row and multi-row requests is merged into batches (statistics show
    fewer session runs than requests: held until all have queued, they are batched whatever
    the machine's speed) and every row still matches its lone answer."""
    model = _name(index)
    frame = served.rows[model]
    requests = [[i] if i % 3 else [i, (i + 7) % POOL] for i in range(POOL)]
    before = served.runner.run(_statistics(served, model)).execution_count
    answers = served.infer(model, [frame.iloc[rows] for rows in requests], held=True)
    runs = served.runner.run(_statistics(served, model)).execution_count - before
    assert runs < len(requests) // 4, runs
    for rows, answer in zip(requests, answers, strict=True):
        for row, got in zip(rows, answer, strict=True):
            assert got == served.alone_bytes(model, row), (SERVED[index], row)


async def _statistics(served: Served, model: str) -> Any:
    answer = await served.stub.ModelStatistics(pb.ModelStatisticsRequest(name=model), timeout=10)
    return answer.model_stats[0]
