"""Fixtures: tiny real ONNX models (built with ``onnx.helper``) in a temporary repository."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference_server.loaded_version import NullHooks
from inference_server.model_manager import ModelManager
from inference_server.repository import ControlMode, RepositoryWatcher
from inference_server.service import InferenceService
from modelyard.model_repository import publish_version

if TYPE_CHECKING:
    from inference_server.app import InferenceServer
    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg

N_FEATURES = 4
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def running_service(
    repo: Path, mode: ControlMode = "explicit"
) -> AsyncIterator[InferenceService]:
    """A ready :class:`InferenceService` over ``repo``; watcher and models closed afterwards."""
    manager = ModelManager(repo, NullHooks())
    watcher = RepositoryWatcher(manager, mode=mode)
    await watcher.start()
    service = InferenceService(manager, watcher, NullHooks())
    service.ready = True
    try:
        yield service
    finally:
        await watcher.stop()
        await manager.close()


def fit_mixed_type_pipeline(
    label_names: tuple[str, str] | None = None,
) -> tuple[Any, Any, bytes]:
    """A scikit-learn pipeline over a numeric and a string column, and its ONNX bytes.

    Returns (pipeline, frame, onnx bytes). Classes are booleans, or ``label_names`` (strings,
    served as BYTES labels).
    """
    import pandas as pd
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"age": rng.normal(40, 10, 300), "city": rng.choice(["oslo", "lima", "pune"], 300)}
    )
    mask = (frame["age"] > 40) ^ (frame["city"] == "lima")
    target = mask if label_names is None else np.where(mask, label_names[1], label_names[0])
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    pipeline = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame, target)
    onnx_model = convert_sklearn(
        pipeline,
        initial_types=[("age", FloatTensorType([None, 1])), ("city", StringTensorType([None, 1]))],
        options={id(pipeline): {"zipmap": False}},
        target_opset=17,
    )
    return pipeline, frame, onnx_model.SerializeToString()


@contextmanager
def serve_subprocess(repo: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m modelyard serve`` on ``repo`` (loopback, quiet logs) plus ``args``.

    Each worker prints one JSON ``listening`` line on stdout with its bound ports. A server
    the test did not stop itself (a failed assertion) is killed on the way out, so no test
    leaves a server behind.
    """
    command = [sys.executable, "-m", "modelyard", "serve", "--model-repository", str(repo)]
    command += ["--host", "127.0.0.1", "--log-level", "warning", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        assert proc.stdout is not None
        with proc.stdout:
            yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def classifier_bytes(seed: int = 0, n_features: int = N_FEATURES, *, meta: bool = True) -> bytes:
    """A softmax-regression classifier: input [-1, n] FP32 -> label [-1] INT64, probabilities."""
    rng = np.random.default_rng(seed)
    weights = numpy_helper.from_array(rng.normal(size=(n_features, 2)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(2,)).astype(np.float32), "B")
    nodes = [
        helper.make_node("MatMul", ["input", "W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "clf",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_features])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        ],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta:
        names = [f"f{i}" for i in range(n_features)]
        helper.set_model_props(
            model,
            {
                "modelyard.task": "classification",
                "modelyard.feature_names": json.dumps(names),
                "modelyard.class_labels": json.dumps([0, 1]),
            },
        )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def classifier_reference(seed: int, x: np.ndarray) -> np.ndarray:
    """The probabilities :func:`classifier_bytes` computes, in numpy."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(x.shape[1], 2)).astype(np.float32)
    b = rng.normal(size=(2,)).astype(np.float32)
    logits = x @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return probabilities


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
def publish(repo: Path) -> Callable[..., Path]:
    def _publish(name: str, version: int, seed: int | None = None, **kw: object) -> Path:
        data = classifier_bytes(version if seed is None else seed, **kw)  # type: ignore[arg-type]
        return publish_version(repo, name, version, {"model.onnx": data})

    return _publish


@pytest.fixture
async def server(
    repo: Path, publish: Callable[..., Path], request: pytest.FixtureRequest
) -> AsyncIterator[InferenceServer]:
    """A real server on 127.0.0.1:0 (gRPC + metrics, no HTTP) with model ``clf`` version 1.

    Indirect parametrization passes extra ``server`` settings (a dict of
    :class:`modelyard.settings.ServerSettings` fields).
    """
    from inference_server.app import InferenceServer
    from modelyard.settings import ServerSettings, Settings

    publish("clf", 1)
    overrides: dict[str, Any] = getattr(request, "param", {})
    server = ServerSettings(
        model_repository=str(repo),
        grpc_port=0,
        http_port=None,
        metrics_port=0,
        control_mode="poll",
        poll_interval_s=0.05,
        max_request_bytes=1024 * 1024,
        **overrides,
    )
    srv = InferenceServer(Settings(server=server))
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def stub(server: InferenceServer) -> AsyncIterator[pbg.GRPCInferenceServiceStub]:
    """A grpc.aio stub of inference.GRPCInferenceService connected to ``server``."""
    import grpc

    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield pbg.GRPCInferenceServiceStub(channel)
    await channel.close(None)
