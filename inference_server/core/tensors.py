"""Tensor encodings of the Open Inference Protocol: datatypes, raw bytes and value lists.

One table maps OIP datatypes to numpy dtypes (little-endian, as the protocol's raw tensors
are), one to onnxruntime's type strings. The raw format serves both gRPC
``raw_input_contents``/``raw_output_contents`` and the HTTP binary tensor extension: row-major
little-endian bytes, and for ``BYTES`` each element as a 4-byte little-endian length followed
by the bytes.

>>> import numpy as np
>>> a = np.array([[1.5, 2.0]], dtype=np.float32)
>>> decode_raw("x", "FP32", (1, 2), encode_raw(a, "FP32")).tolist()
[[1.5, 2.0]]
>>> decode_raw("s", "BYTES", (2,), encode_raw(np.array([b"ab", b""], dtype=object), "BYTES"))
array([b'ab', b''], dtype=object)
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Sequence

DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
"""OIP datatype -> numpy dtype of its decoded array."""

ONNX_TYPES: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
"""onnxruntime type string -> OIP datatype."""

_BY_KIND: dict[tuple[str, int], str] = {
    (dt.kind, dt.itemsize): name for name, dt in DTYPES.items() if name != "BYTES"
}
_LEN = struct.Struct("<I")


def datatype_of(array: np.ndarray) -> str:
    """Return the OIP datatype of an array (object and string arrays are ``BYTES``).

    Raises:
        InvalidArgument: the dtype has no OIP datatype.
    """
    kind = array.dtype.kind
    if kind in "OUS":
        return "BYTES"
    try:
        return _BY_KIND[(kind, array.dtype.itemsize)]
    except KeyError:
        raise InvalidArgument(f"dtype {array.dtype} has no Open Inference datatype") from None


def element_count(shape: Sequence[int]) -> int:
    """Number of elements of a shape; a negative dimension counts as invalid (-1).

    >>> element_count((2, 3)), element_count((2, -1)), element_count(())
    (6, -1, 1)
    """
    for d in shape:  # a plain loop: cheaper than a generator on a per-request path
        if d < 0:
            return -1
    return math.prod(shape)


def _dtype(name: str, datatype: str) -> np.dtype[Any]:
    try:
        return DTYPES[datatype]
    except KeyError:
        raise InvalidArgument(f"input {name!r}: unknown datatype {datatype!r}") from None


def _count(name: str, shape: Sequence[int]) -> int:
    count = element_count(shape)
    if count < 0:
        raise InvalidArgument(f"input {name!r}: shape {list(shape)} has a negative dimension")
    return count


def decode_raw(name: str, datatype: str, shape: Sequence[int], buffer: bytes) -> np.ndarray:
    """Decode one raw tensor into an array of ``shape`` (a zero-copy view for numeric types).

    Raises:
        InvalidArgument: unknown datatype, or a byte length that does not match the shape.
    """
    dtype = _dtype(name, datatype)
    count = _count(name, shape)
    if datatype == "BYTES":
        return _decode_bytes(name, shape, count, buffer)
    expected = count * dtype.itemsize
    if len(buffer) != expected:
        raise InvalidArgument(
            f"input {name!r}: raw data has {len(buffer)} bytes, shape {list(shape)} "
            f"of {datatype} needs {expected}"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def _decode_bytes(name: str, shape: Sequence[int], count: int, buffer: bytes) -> np.ndarray:
    if count * 4 > len(buffer):  # checked before allocating: a shape must not cost memory
        raise InvalidArgument(
            f"input {name!r}: raw BYTES data of {len(buffer)} bytes cannot hold "
            f"{count} elements of shape {list(shape)}"
        )
    out = np.empty(count, dtype=object)
    view = memoryview(buffer)
    pos, end = 0, len(buffer)
    for i in range(count):
        if pos + 4 > end:
            raise InvalidArgument(
                f"input {name!r}: raw BYTES data ends after {i} of {count} elements"
            )
        (size,) = _LEN.unpack_from(view, pos)
        pos += 4
        if pos + size > end:
            raise InvalidArgument(f"input {name!r}: raw BYTES element {i} is truncated")
        out[i] = bytes(view[pos : pos + size])
        pos += size
    if pos != end:
        raise InvalidArgument(
            f"input {name!r}: raw BYTES data has {end - pos} bytes after {count} elements"
        )
    return out.reshape(shape)


def encode_raw(array: np.ndarray, datatype: str) -> bytes:
    """Encode an array as raw OIP bytes (row-major, little-endian; BYTES length-prefixed)."""
    if datatype == "BYTES":
        parts: list[bytes] = []
        for item in array.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode()
            parts.append(_LEN.pack(len(data)))
            parts.append(data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=DTYPES[datatype]).tobytes()


def decode_values(
    name: str, datatype: str, shape: Sequence[int], values: Sequence[Any]
) -> np.ndarray:
    """Build an array of ``shape`` from a flat value list (typed contents, JSON ``data``).

    Strings in a ``BYTES`` tensor become UTF-8 ``bytes``.

    Raises:
        InvalidArgument: unknown datatype, values of the wrong type, or a count that does not
            match the shape.
    """
    dtype = _dtype(name, datatype)
    count = _count(name, shape)
    if len(values) != count:
        raise InvalidArgument(
            f"input {name!r}: {len(values)} values given, shape {list(shape)} needs {count}"
        )
    if datatype == "BYTES":
        out = np.empty(count, dtype=object)
        out[:] = [_as_bytes(name, v) for v in values]
        return out.reshape(shape)
    try:
        return np.asarray(values, dtype=dtype).reshape(shape)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidArgument(f"input {name!r}: values are not {datatype}: {exc}") from None


def _as_bytes(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise InvalidArgument(f"input {name!r}: BYTES element {value!r} is not a string")
