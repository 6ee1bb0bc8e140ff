"""Round trips of the OIP REST codec (no server): what a client encodes, the adapter decodes
to the same tensors; what the adapter encodes, a client decodes to the same tensors."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from inference_server.core.tensors import encode_raw
from inference_server.core.types import InferResponse, ResponseOutput
from inference_server.http.oip import decode_infer, encode_infer, json_values

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}

tensors = st.sampled_from(sorted(DTYPES)).flatmap(
    lambda datatype: st.tuples(
        st.just(datatype),
        hnp.arrays(
            DTYPES[datatype],
            hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
            elements={"allow_nan": False, "allow_infinity": False}
            if datatype.startswith("FP")
            else None,
        ),
    )
)


def _client_body(
    items: list[tuple[str, np.ndarray]], binary_flags: list[bool]
) -> tuple[bytes, bytes | None]:
    inputs, chunks = [], []
    for i, ((datatype, array), binary) in enumerate(zip(items, binary_flags, strict=True)):
        tensor: dict[str, object] = {
            "name": f"t{i}",
            "shape": list(array.shape),
            "datatype": datatype,
        }
        if binary:
            raw = encode_raw(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = array.tolist()  # nested lists, as many clients send them
        inputs.append(tensor)
    head = json.dumps({"inputs": inputs}).encode()
    if not chunks:
        return head, None
    return head + b"".join(chunks), str(len(head)).encode()


@settings(max_examples=60, deadline=None)
@given(items=st.lists(tensors, min_size=1, max_size=3), data=st.data())
def test_request_decoding_round_trips(
    items: list[tuple[str, np.ndarray]], data: st.DataObject
) -> None:
    flags = data.draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
    body, header_length = _client_body(items, flags)
    request, _ = decode_infer(body, header_length, "m", None)
    for (datatype, array), decoded in zip(items, request.inputs, strict=True):
        assert decoded.datatype == datatype
        assert decoded.shape == array.shape
        np.testing.assert_array_equal(decoded.data, array)


@settings(max_examples=60, deadline=None)
@given(items=st.lists(tensors, min_size=1, max_size=3), raw_output=st.booleans())
def test_response_encoding_round_trips(
    items: list[tuple[str, np.ndarray]], raw_output: bool
) -> None:
    outputs = [
        ResponseOutput(name=f"o{i}", datatype=datatype, shape=array.shape, data=array)
        for i, (datatype, array) in enumerate(items)
    ]
    response = InferResponse(model_name="m", model_version="1", outputs=outputs)
    body, head_length = encode_infer(response, {}, raw_output)
    head = json.loads(body if head_length is None else body[:head_length])
    rest = b"" if head_length is None else body[head_length:]
    for (datatype, array), out in zip(items, head["outputs"], strict=True):
        assert out["shape"] == list(array.shape)
        if raw_output:
            size = out["parameters"]["binary_data_size"]
            decoded = np.frombuffer(rest[:size], dtype=DTYPES[datatype]).reshape(array.shape)
            rest = rest[size:]
        else:
            decoded = np.array(out["data"], dtype=DTYPES[datatype]).reshape(array.shape)
        np.testing.assert_array_equal(decoded, array)
    assert rest == b""


def test_json_values_of_bytes_are_text() -> None:
    assert json_values(np.array([[b"a"], [b"\xff"]], dtype=object)) == ["a", "\ufffd"]
