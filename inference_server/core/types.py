"""Shapes carried between the protocol adapters and the inference service.

Adapters decode wire messages (protobuf, JSON, binary tensors) into these Structs and encode
the service's answers back; protobuf messages and HTTP objects never travel past an adapter.
Tensor payloads are numpy arrays, so the service never copies data between protocols.

The request/response Structs sit on the hot path: they are plain ``msgspec.Struct`` instances
(cheap to build, ``gc=False`` since they hold no cycles) and are never serialised by msgspec
directly; the metadata Structs are encoded to JSON by the HTTP adapter as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from modelyard.models import Scalar

if TYPE_CHECKING:
    import numpy as np


class RequestInput(msgspec.Struct, kw_only=True, gc=False):
    """One input tensor of an inference request.

    Attributes:
        name: tensor name.
        datatype: OIP datatype as the client declared it (``FP32``, ``BYTES``, ...).
        shape: the declared shape.
        data: the values, already decoded into an array of that shape (BYTES: object array
            of ``bytes``).
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray


class RequestedOutput(msgspec.Struct, kw_only=True, gc=False):
    """An output the client asked for; ``binary`` is the HTTP binary-data preference."""

    name: str
    binary: bool | None = None


class InferRequest(msgspec.Struct, kw_only=True, gc=False):
    """An inference request, whichever protocol carried it.

    Attributes:
        model_name: the model to run.
        model_version: a version number as text, or None for the default version / route.
        id: the client's request id, echoed in the response ("" when none).
        inputs: input tensors.
        outputs: the outputs asked for; None means all.
        parameters: request parameters, echoed in the response.
        raw_output: answer with raw bytes (gRPC ``raw_output_contents`` / HTTP binary output).
        protocol: the transport that carried it (``grpc`` or ``http``; the prediction log).
    """

    model_name: str
    model_version: str | None = None
    id: str = ""
    inputs: list[RequestInput]
    outputs: list[RequestedOutput] | None = None
    parameters: dict[str, Scalar] = {}
    raw_output: bool = False
    protocol: str = "grpc"


class ResponseOutput(msgspec.Struct, kw_only=True, gc=False):
    """One output tensor of a response; ``data`` has exactly ``shape``."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray


class InferResponse(msgspec.Struct, kw_only=True, gc=False):
    """The answer to an :class:`InferRequest`; ``model_version`` is the version that computed it."""

    model_name: str
    model_version: str
    id: str = ""
    outputs: list[ResponseOutput]
    parameters: dict[str, Scalar] = {}


class TensorMetadata(msgspec.Struct, kw_only=True, frozen=True):
    """Name, datatype and shape of a model input or output (-1: variable dimension)."""

    name: str
    datatype: str
    shape: list[int]


class ServerMetadata(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /v2`` / ServerMetadata."""

    name: str
    version: str
    extensions: list[str]


class ModelMetadata(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /v2/models/{m}`` / ModelMetadata.

    Attributes:
        name: the model.
        versions: the versions that are loaded and ready.
        platform: always ``onnxruntime_onnx`` (Triton's name).
        inputs: input tensors of the resolved version.
        outputs: output tensors of the resolved version.
        parameters: extra facts (task, feature names, the last load error under ``error``).
    """

    name: str
    versions: list[str]
    platform: str = "onnxruntime_onnx"
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, str] = {}


class RepositoryModel(msgspec.Struct, kw_only=True, frozen=True):
    """One entry of the repository index (Triton's ``RepositoryIndex``).

    Attributes:
        name: the model.
        version: the version ("" for a model with no version on disk).
        state: ``READY``, ``LOADING``, ``UNAVAILABLE`` or ``UNLOADING``.
        reason: why it is not ready (the load error), "" otherwise.
    """

    name: str
    version: str
    state: str
    reason: str = ""


class PredictResult(msgspec.Struct, kw_only=True, frozen=True):
    """Answer of the simple JSON endpoints (``/predict``, ``/predict/batch``).

    Attributes:
        model_name: the model that answered.
        model_version: the version that computed the answer.
        variant: the A/B role of that version, if the request was routed.
        id: the request id the prediction log recorded the rows under ("" when it is off).
        labels: the predicted class per row (classifiers).
        probabilities: class probabilities per row, in ``class_labels`` order (classifiers).
        predictions: the predicted value per row (regressors).
        class_labels: the class order of ``probabilities`` when known.
    """

    model_name: str
    model_version: str
    variant: str | None = None
    id: str = ""
    labels: list[Scalar] | None = None
    probabilities: list[list[float]] | None = None
    predictions: list[float] | None = None
    class_labels: list[Scalar] | None = None


class ModelStatistics(msgspec.Struct, kw_only=True):
    """Counters of one model version (Triton's ``ModelStatistics``, durations in ns).

    Attributes:
        name: the model.
        version: the version.
        last_inference_ms: wall-clock time of the last inference (ms since the epoch).
        inference_count: rows inferred.
        execution_count: session runs (batches).
        success_count: successful requests.
        success_ns: total request time of the successful requests.
        fail_count: failed requests.
        fail_ns: total request time of the failed requests.
        queue_ns: total time requests waited in the batch queue.
        compute_ns: total session run time.
    """

    name: str
    version: str
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    success_count: int = 0
    success_ns: int = 0
    fail_count: int = 0
    fail_ns: int = 0
    queue_ns: int = 0
    compute_ns: int = 0


class ModelConfiguration(msgspec.Struct, kw_only=True, frozen=True):
    """The auto-completed configuration of a version (Triton's ``ModelConfig``).

    Attributes:
        name: the model.
        platform: ``onnxruntime_onnx``.
        backend: ``onnxruntime``.
        max_batch_size: most rows per batch; 0 when the model has no batch dimension (then
            ``inputs``/``outputs`` dims are the full shapes), otherwise dims exclude it.
        inputs: inputs with their dims.
        outputs: outputs with their dims.
        dynamic_batching: whether the micro-batcher is on.
        max_queue_delay_us: the batcher's delay from the oldest queued request.
        max_queue_size: the batcher's queue bound.
        default_queue_timeout_us: the batcher's queue timeout (0: none).
        version_policy: ``latest``, ``all`` or ``specific``.
        latest_n: versions kept by ``latest``.
        specific_versions: versions kept by ``specific``.
        instance_count: session instances per version (1).
    """

    name: str
    platform: str = "onnxruntime_onnx"
    backend: str = "onnxruntime"
    max_batch_size: int
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    dynamic_batching: bool
    max_queue_delay_us: int = 0
    max_queue_size: int = 0
    default_queue_timeout_us: int = 0
    version_policy: str = "latest"
    latest_n: int = 1
    specific_versions: list[int] = []
    instance_count: int = 1
