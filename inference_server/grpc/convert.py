"""Protobuf <-> core types for the gRPC adapter; protobuf never travels past this module.

Hot-path choices (numbers in the ``inference_server`` package docstring):
raw tensors are decoded with ``np.frombuffer`` (zero copy) and encoded with ``tobytes``;
typed contents go through one ``np.asarray`` per tensor; a response is built with keyword
arguments in one constructor call per tensor (upb builds it in C); parameters are only
converted when present. A request that came with ``raw_input_contents`` is answered with
``raw_output_contents`` (tritonclient decodes only that); typed requests get typed answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference_server.core.tensors import decode_raw, decode_values, encode_raw
from inference_server.core.types import InferRequest, RequestedOutput, RequestInput
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import model_config_pb2 as mc
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Mapping

    from inference_server.core.types import (
        InferResponse,
        ModelConfiguration,
        ModelMetadata,
        ModelStatistics,
        RepositoryModel,
    )
    from modelyard.models import Scalar

CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
"""OIP datatype -> the ``InferTensorContents`` field that carries it (FP16 only raw)."""

_Tensor = pb.ModelInferResponse.InferOutputTensor


def parameters_from_proto(params: Mapping[str, pb.InferParameter]) -> dict[str, Scalar]:
    """Convert a protobuf parameter map to plain values."""
    out: dict[str, Scalar] = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, choice) if choice else None
    return out


def parameters_to_proto(params: Mapping[str, Scalar]) -> dict[str, pb.InferParameter]:
    """Convert plain parameter values to a protobuf parameter map (None is dropped)."""
    out: dict[str, pb.InferParameter] = {}
    for key, value in params.items():
        if isinstance(value, bool):
            out[key] = pb.InferParameter(bool_param=value)
        elif isinstance(value, int):
            out[key] = pb.InferParameter(int64_param=value)
        elif isinstance(value, float):
            out[key] = pb.InferParameter(double_param=value)
        elif isinstance(value, str):
            out[key] = pb.InferParameter(string_param=value)
    return out


def _typed_input(tensor: Any) -> RequestInput:
    datatype = tensor.datatype
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidArgument(
            f"input {tensor.name!r}: datatype {datatype!r} needs raw_input_contents"
        )
    given = [f.name for f, _ in tensor.contents.ListFields()]
    if given and given != [field]:
        raise InvalidArgument(
            f"input {tensor.name!r}: datatype {datatype} takes {field}, got {', '.join(given)}"
        )
    shape = tuple(tensor.shape)
    data = decode_values(tensor.name, datatype, shape, getattr(tensor.contents, field))
    return RequestInput(name=tensor.name, datatype=datatype, shape=shape, data=data)


def request_from_proto(msg: pb.ModelInferRequest) -> InferRequest:
    """Decode a ModelInferRequest (raw or typed contents).

    Raises:
        InvalidArgument: raw contents that do not pair with the inputs or are mixed with
            typed contents, typed contents in the field of another datatype, or tensor data
            that does not match its shape and datatype.
    """
    raw = msg.raw_input_contents
    tensors = msg.inputs
    if raw:
        if len(raw) != len(tensors):
            raise InvalidArgument(
                f"{len(raw)} raw_input_contents for {len(tensors)} inputs; give one per input"
            )
        mixed = [t.name for t in tensors if t.HasField("contents")]
        if mixed:
            raise InvalidArgument(
                f"inputs {mixed} have typed contents next to raw_input_contents; use one form"
            )
        inputs = []
        for tensor, buffer in zip(tensors, raw, strict=True):
            shape = tuple(tensor.shape)
            data = decode_raw(tensor.name, tensor.datatype, shape, buffer)
            inputs.append(
                RequestInput(name=tensor.name, datatype=tensor.datatype, shape=shape, data=data)
            )
    else:
        inputs = [_typed_input(t) for t in tensors]
    return InferRequest(
        model_name=msg.model_name,
        model_version=msg.model_version or None,
        id=msg.id,
        inputs=inputs,
        outputs=[RequestedOutput(name=o.name) for o in msg.outputs] if msg.outputs else None,
        parameters=parameters_from_proto(msg.parameters) if msg.parameters else {},
        raw_output=bool(raw),
    )


def response_to_proto(resp: InferResponse, *, raw: bool) -> pb.ModelInferResponse:
    """Encode an InferResponse; raw bytes when the request was raw, typed contents otherwise."""
    if raw:
        outputs = [_Tensor(name=o.name, datatype=o.datatype, shape=o.shape) for o in resp.outputs]
        contents = [encode_raw(o.data, o.datatype) for o in resp.outputs]
    else:
        outputs = [
            _Tensor(
                name=o.name,
                datatype=o.datatype,
                shape=o.shape,
                contents=_contents(o.datatype, o.data.reshape(-1).tolist()),
            )
            for o in resp.outputs
        ]
        contents = []
    msg = pb.ModelInferResponse(
        model_name=resp.model_name,
        model_version=resp.model_version,
        id=resp.id,
        outputs=outputs,
        raw_output_contents=contents,
    )
    if resp.parameters:
        for key, value in parameters_to_proto(resp.parameters).items():
            msg.parameters[key].CopyFrom(value)
    return msg


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _BYTE[n]
    if n < 0x4000:  # answers are small: two bytes cover up to 16 KiB
        return _BYTE[(n & 0x7F) | 0x80] + _BYTE[n >> 7]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_BYTE = [bytes((i,)) for i in range(256)]


_STREAM_ANSWER_TAG = b"\x12"  # ModelStreamInferResponse.infer_response: field 2, length-delimited


def stream_answer(resp: InferResponse, *, raw: bool) -> bytes:
    """A serialized ModelStreamInferResponse carrying ``resp``.

    The wrapper is written by hand around the serialized answer: building the wrapper message
    would copy the answer into it first. A raw answer without parameters (the common stream
    answer) is written by hand too (:func:`raw_answer_bytes`); others go through protobuf.

    >>> from inference_server.core.types import InferResponse
    >>> answer = InferResponse(model_name="m", model_version="1", id="r7", outputs=[])
    >>> wrapped = pb.ModelStreamInferResponse(infer_response=response_to_proto(answer, raw=True))
    >>> stream_answer(answer, raw=True) == wrapped.SerializeToString()
    True
    """
    if raw and not resp.parameters:
        body = raw_answer_bytes(resp)
    else:
        body = response_to_proto(resp, raw=raw).SerializeToString()
    return _STREAM_ANSWER_TAG + _varint(len(body)) + body


_TENSOR_HEADERS: dict[tuple[str, str, tuple[int, ...]], bytes] = {}
_TENSOR_HEADERS_MAX = 4096  # distinct (output, shape) pairs kept; the cache restarts beyond


def _string_field(tag: bytes, value: str) -> bytes:
    if not value:
        return b""  # proto3 leaves empty strings out
    data = value.encode()
    return tag + _varint(len(data)) + data


def _tensor_header(name: str, datatype: str, shape: tuple[int, ...]) -> bytes:
    """Field 5 (``outputs``) of one raw output: the same bytes for every answer of a shape."""
    key = (name, datatype, shape)
    header = _TENSOR_HEADERS.get(key)
    if header is None:
        body = _Tensor(name=name, datatype=datatype, shape=shape).SerializeToString()
        header = b"\x2a" + _varint(len(body)) + body
        if len(_TENSOR_HEADERS) >= _TENSOR_HEADERS_MAX:
            _TENSOR_HEADERS.clear()
        _TENSOR_HEADERS[key] = header
    return header


def raw_answer_bytes(resp: InferResponse) -> bytes:
    """A serialized ModelInferResponse with raw outputs and no parameters, written directly.

    Byte for byte what protobuf writes (fields in number order, empty strings left out); the
    output tensors' descriptions are cached per name, datatype and shape.

    >>> import numpy as np
    >>> from inference_server.core.types import InferResponse, ResponseOutput
    >>> p = np.array([[0.25, 0.75]], dtype=np.float32)
    >>> answer = InferResponse(model_name="m", model_version="2", id="", outputs=[
    ...     ResponseOutput(name="probabilities", datatype="FP32", shape=(1, 2), data=p)])
    >>> raw_answer_bytes(answer) == response_to_proto(answer, raw=True).SerializeToString()
    True
    """
    parts = [
        _string_field(b"\x0a", resp.model_name),
        _string_field(b"\x12", resp.model_version),
        _string_field(b"\x1a", resp.id),
    ]
    for o in resp.outputs:
        parts.append(_tensor_header(o.name, o.datatype, tuple(o.shape)))
    for o in resp.outputs:
        data = encode_raw(o.data, o.datatype)
        parts.append(b"\x32" + _varint(len(data)) + data)
    return b"".join(parts)


def stream_error(message: str, model_name: str, request_id: str) -> bytes:
    """A serialized ModelStreamInferResponse answering one request with ``error_message``."""
    echo = pb.ModelInferResponse(model_name=model_name, id=request_id)
    return pb.ModelStreamInferResponse(
        error_message=message, infer_response=echo
    ).SerializeToString()


def _contents(datatype: str, values: list[Any]) -> pb.InferTensorContents:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:  # FP16 has no typed field: the protocol says raw only
        raise InvalidArgument(f"output datatype {datatype} can only be sent raw")
    if datatype == "BYTES":
        values = [v if isinstance(v, bytes) else str(v).encode() for v in values]
    return pb.InferTensorContents(**{field: values})


def metadata_to_proto(meta: ModelMetadata) -> pb.ModelMetadataResponse:
    """Encode model metadata."""
    tensor = pb.ModelMetadataResponse.TensorMetadata
    return pb.ModelMetadataResponse(
        name=meta.name,
        versions=meta.versions,
        platform=meta.platform,
        inputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.inputs],
        outputs=[tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.outputs],
    )


def _data_type(datatype: str) -> int:
    return int(mc.DataType.Value("TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"))


def _version_policy(config: ModelConfiguration) -> mc.ModelVersionPolicy:
    if config.version_policy == "all":
        return mc.ModelVersionPolicy(all=mc.ModelVersionPolicy.All())
    if config.version_policy == "specific":
        specific = mc.ModelVersionPolicy.Specific(versions=config.specific_versions)
        return mc.ModelVersionPolicy(specific=specific)
    latest = mc.ModelVersionPolicy.Latest(num_versions=config.latest_n)
    return mc.ModelVersionPolicy(latest=latest)


def config_to_proto(config: ModelConfiguration) -> pb.ModelConfigResponse:
    """Encode the auto-completed configuration as Triton's ModelConfig."""
    msg = mc.ModelConfig(
        name=config.name,
        platform=config.platform,
        backend=config.backend,
        max_batch_size=config.max_batch_size,
        version_policy=_version_policy(config),
        default_model_filename="model.onnx",
        input=[
            mc.ModelInput(name=t.name, data_type=_data_type(t.datatype), dims=t.shape)  # type: ignore[arg-type]
            for t in config.inputs
        ],
        output=[
            mc.ModelOutput(name=t.name, data_type=_data_type(t.datatype), dims=t.shape)  # type: ignore[arg-type]
            for t in config.outputs
        ],
        instance_group=[
            mc.ModelInstanceGroup(
                name=f"{config.name}_0",
                count=config.instance_count,
                kind=mc.ModelInstanceGroup.KIND_CPU,
            )
        ],
    )
    if config.dynamic_batching:
        queue = mc.ModelQueuePolicy(
            max_queue_size=config.max_queue_size,
            default_timeout_microseconds=config.default_queue_timeout_us,
        )
        msg.dynamic_batching.CopyFrom(
            mc.ModelDynamicBatching(
                max_queue_delay_microseconds=config.max_queue_delay_us,
                default_queue_policy=queue,
            )
        )
    return pb.ModelConfigResponse(config=msg)


def statistics_to_proto(stats: list[ModelStatistics]) -> pb.ModelStatisticsResponse:
    """Encode model statistics (Triton's shape; input/output copy times count as zero)."""
    duration = pb.StatisticDuration
    return pb.ModelStatisticsResponse(
        model_stats=[
            pb.ModelStatistics(
                name=s.name,
                version=s.version,
                last_inference=s.last_inference_ms,
                inference_count=s.inference_count,
                execution_count=s.execution_count,
                inference_stats=pb.InferStatistics(
                    success=duration(count=s.success_count, ns=s.success_ns),
                    fail=duration(count=s.fail_count, ns=s.fail_ns),
                    queue=duration(count=s.success_count, ns=s.queue_ns),
                    # perf_analyzer requires the three compute counts to be equal
                    compute_input=duration(count=s.execution_count, ns=0),
                    compute_infer=duration(count=s.execution_count, ns=s.compute_ns),
                    compute_output=duration(count=s.execution_count, ns=0),
                ),
            )
            for s in stats
        ]
    )


def check_repository_name(name: str) -> None:
    """Refuse a ``repository_name`` (repository requests): the server has one repository, and
    a name was ignored -- an unload naming another repository unloaded the model here. Triton
    refuses it too ("'repository_name' specification is not supported", UNSUPPORTED).

    Raises:
        InvalidArgument: the name is not empty.
    """
    if name:
        raise InvalidArgument(
            f"repository_name {name[:100]!r} is not supported: this server has one model "
            "repository; leave it empty"
        )


def index_to_proto(models: list[RepositoryModel]) -> pb.RepositoryIndexResponse:
    """Encode the repository index."""
    entry = pb.RepositoryIndexResponse.ModelIndex
    return pb.RepositoryIndexResponse(
        models=[
            entry(name=m.name, version=m.version, state=m.state, reason=m.reason) for m in models
        ]
    )
