"""Open Inference Protocol REST bodies <-> :mod:`inference_server.core.types`.

Infer requests arrive as JSON (``data`` flat or nested, row-major) or with Triton's binary
tensor extension: the ``Inference-Header-Content-Length`` header gives the size of the JSON
head; the raw tensors follow it, in input order, each input naming its byte count in
``parameters.binary_data_size``. Responses carry an output in binary when the request asked
for it (``outputs[i].parameters.binary_data``, else the request's ``binary_data_output``):
the JSON head then gives ``binary_data_size`` per output and the bytes follow. This is what
``tritonclient.http`` sends and expects by default.

Decoders and encoders are built once; request shapes forbid unknown fields.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Final

import msgspec

from inference_server.core.tensors import decode_raw, decode_values, encode_raw
from inference_server.core.types import (
    InferRequest,
    InferResponse,
    RequestedOutput,
    RequestInput,
)
from modelyard.errors import InvalidArgument
from modelyard.models import Scalar

if TYPE_CHECKING:
    import numpy as np

HEADER_LENGTH: Final = b"inference-header-content-length"
OCTET_STREAM: Final = b"application/octet-stream"


class _Input(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A decoded request shape (unknown fields are refused)."""


class InputTensor(_Input, kw_only=True, forbid_unknown_fields=True):
    """One ``inputs[i]`` of a request: ``data`` or ``parameters.binary_data_size``."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Scalar] = {}
    data: list[Any] | None = None


class OutputRequest(_Input, kw_only=True, forbid_unknown_fields=True):
    """One ``outputs[i]`` of a request."""

    name: str
    parameters: dict[str, Scalar] = {}


class InferBody(_Input, kw_only=True, forbid_unknown_fields=True):
    """The JSON body (or binary-extension head) of ``POST .../infer``."""

    id: str = ""
    parameters: dict[str, Scalar] = {}
    inputs: list[InputTensor]
    outputs: list[OutputRequest] | None = None


class OutputTensor(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One ``outputs[i]`` of a response: ``data`` (JSON) or ``binary_data_size`` (binary)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: dict[str, int] | None = None
    data: list[Any] | None = None


class InferResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The JSON body (or binary-extension head) of an infer response."""

    model_name: str
    model_version: str
    id: str = ""
    parameters: dict[str, Scalar] = {}
    outputs: list[OutputTensor]


_decode_body = msgspec.json.Decoder(InferBody).decode
_encode = msgspec.json.Encoder().encode


def decode_infer(
    body: bytes, header_length: bytes | None, model_name: str, model_version: str | None
) -> tuple[InferRequest, dict[str, bool]]:
    """Decode an infer request (JSON or binary extension).

    Args:
        body: the whole request body.
        header_length: the ``Inference-Header-Content-Length`` header, if sent.
        model_name: from the path.
        model_version: from the path, None when absent.

    Returns:
        The request, and the explicit per-output binary choices (name -> binary).

    Raises:
        InvalidArgument: malformed JSON, a wrong field, or binary sizes that do not add up.
        msgspec.DecodeError: the JSON does not parse (the caller answers 400).
    """
    head, tail = _split(body, header_length)
    parsed = _decode_body(head)
    inputs = _inputs(parsed.inputs, tail)
    binary: dict[str, bool] = {}
    outputs = None
    if parsed.outputs is not None:
        outputs = []
        for wanted in parsed.outputs:
            choice = _flag(wanted.parameters.get("binary_data"), wanted.name)
            if choice is not None:
                binary[wanted.name] = choice
            outputs.append(RequestedOutput(name=wanted.name, binary=choice))
    parameters = parsed.parameters
    raw_output = False
    if "binary_data_output" in parameters:
        parameters = dict(parameters)
        raw_output = _flag(parameters.pop("binary_data_output"), "binary_data_output") is True
    request = InferRequest(
        model_name=model_name,
        model_version=model_version,
        id=parsed.id,
        inputs=inputs,
        outputs=outputs,
        parameters=parameters,
        raw_output=raw_output,
        protocol="http",
    )
    return request, binary


def _split(body: bytes, header_length: bytes | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise InvalidArgument(
            f"Inference-Header-Content-Length {header_length.decode(errors='replace')!r} "
            f"does not fit a body of {len(body)} bytes"
        )
    cut = int(header_length)
    return body[:cut], body[cut:]


def _flag(value: Scalar, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidArgument(f"parameter {name!r} must be true or false, got {value!r}")


def _inputs(tensors: list[InputTensor], tail: bytes) -> list[RequestInput]:
    out: list[RequestInput] = []
    offset = 0
    view: memoryview | None = None  # made for the first binary input only
    for tensor in tensors:
        size = tensor.parameters.get("binary_data_size")
        shape = tuple(tensor.shape)
        if size is None:
            if tensor.data is None:
                raise InvalidArgument(f"input {tensor.name!r} has neither data nor binary data")
            array = decode_values(tensor.name, tensor.datatype, shape, _flat(tensor))
        else:
            if tensor.data is not None:
                raise InvalidArgument(f"input {tensor.name!r} has both data and binary data")
            if type(size) is not int or size < 0 or offset + size > len(tail):
                raise InvalidArgument(
                    f"input {tensor.name!r}: binary_data_size {size!r} exceeds the "
                    f"{len(tail) - offset} binary bytes left in the body"
                )
            if view is None:
                view = memoryview(tail)
            chunk = view[offset : offset + size]
            offset += size
            array = decode_raw(tensor.name, tensor.datatype, shape, chunk)  # type: ignore[arg-type]
        out.append(
            RequestInput(name=tensor.name, datatype=tensor.datatype, shape=shape, data=array)
        )
    if offset != len(tail):
        raise InvalidArgument(
            f"the body has {len(tail) - offset} binary bytes that no input's "
            "binary_data_size accounts for"
        )
    return out


def _flat(tensor: InputTensor) -> list[Any]:
    data = tensor.data
    assert data is not None
    try:
        while data and isinstance(data[0], list):
            data = list(itertools.chain.from_iterable(data))
    except TypeError:
        raise InvalidArgument(
            f"input {tensor.name!r}: nested data mixes lists and values"
        ) from None
    return data


def encode_infer(
    response: InferResponse, binary: dict[str, bool], raw_output: bool
) -> tuple[bytes, int | None]:
    """Encode a response; binary outputs follow the JSON head.

    Returns:
        The body, and the JSON head's length when any output is binary (None: all JSON).
    """
    outputs: list[OutputTensor] = []
    chunks: list[bytes] = []
    for output in response.outputs:
        if binary.get(output.name, raw_output):
            raw = encode_raw(output.data, output.datatype)
            chunks.append(raw)
            params = {"binary_data_size": len(raw)}
            outputs.append(
                OutputTensor(
                    name=output.name,
                    datatype=output.datatype,
                    shape=output.shape,
                    parameters=params,
                )
            )
        else:
            outputs.append(
                OutputTensor(
                    name=output.name,
                    datatype=output.datatype,
                    shape=output.shape,
                    data=json_values(output.data),
                )
            )
    head = _encode(
        InferResult(
            model_name=response.model_name,
            model_version=response.model_version,
            id=response.id,
            parameters=response.parameters,
            outputs=outputs,
        )
    )
    if not chunks:
        return head, None
    return b"".join([head, *chunks]), len(head)


def json_values(array: np.ndarray) -> list[Any]:
    """The flat, row-major JSON values of an array (BYTES as UTF-8 text).

    >>> import numpy as np
    >>> json_values(np.array([[1, 2], [3, 4]], dtype=np.int64))
    [1, 2, 3, 4]
    >>> json_values(np.array([b"a", b"b"], dtype=object))
    ['a', 'b']
    """
    values: list[Any] = array.ravel().tolist()
    if array.dtype.kind in "OS":
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return values
