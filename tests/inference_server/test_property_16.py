"""Property 16: invalid requests are rejected, on both protocols, and the server goes on.

Hypothesis builds malformed infer requests of every kind -- datatypes, shapes, byte lengths,
JSON types, sizes, names, non-finite values, the binary-extension header -- each guaranteed
invalid by construction. Every answer is 4xx / INVALID_ARGUMENT-class with a message naming
the problem (never 5xx / INTERNAL / UNKNOWN), and the next valid request is answered
correctly.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_server.grpc._generated import grpc_service_pb2 as pb

from .live import GOOD_X, Live, assert_good_proto_answer, good_json, good_proto, live_server

PROPERTY = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
    max_examples=80,
)
LIMIT = 256 * 1024
WRONG_DATATYPES = ["INT64", "INT32", "BYTES", "BOOL", "UINT8", "FP99", "", "fp32", "FP32 "]
NOT_NUMBERS: st.SearchStrategy[object] = st.one_of(
    st.text(max_size=5), st.none(), st.just({}), st.just({"a": 1})
)
BIG = st.sampled_from([2**63, 2**64, 10**30])
NAMES = st.text(max_size=12).filter(lambda n: n != "input")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    repo = tmp_path / "repo"
    repo.mkdir()
    with live_server(repo, max_request_bytes=LIMIT) as server:
        yield server


def _tensor(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**good_json()["inputs"][0], **changes}]}


HttpCase = tuple[str, str, bytes, dict[str, str], tuple[str, ...]]
INFER = "/v2/models/clf/infer"
JSON = {"content-type": "application/json"}


def _json_case(kind: str, body: Any, *words: str, path: str = INFER) -> HttpCase:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return kind, path, content, JSON, words or ("'input'",)


def _http_datatype(draw: st.DrawFn) -> HttpCase:
    datatype = draw(st.sampled_from(WRONG_DATATYPES) | st.text(max_size=6))
    return _json_case("datatype", _tensor(datatype=datatype), "'input'", "datatype")


def _http_shape(draw: st.DrawFn) -> HttpCase:
    shape = draw(st.lists(st.integers(-3, 10) | BIG, max_size=4).filter(lambda s: s != [2, 4]))
    return _json_case("shape", _tensor(shape=shape), "'input'", "shape", "integer", "int")


def _http_data_type(draw: st.DrawFn) -> HttpCase:
    data = draw(st.lists(NOT_NUMBERS, min_size=GOOD_X.size, max_size=GOOD_X.size))
    return _json_case("data_type", _tensor(data=data))


def _http_data_length(draw: st.DrawFn) -> HttpCase:
    count = draw(st.integers(0, 40).filter(lambda c: c != GOOD_X.size))
    return _json_case("data_length", _tensor(data=[0.5] * count))


def _http_non_finite(draw: st.DrawFn) -> HttpCase:
    data = [0.5] * GOOD_X.size
    data[draw(st.integers(0, GOOD_X.size - 1))] = 12345.5
    token = draw(st.sampled_from([b"1e400", b"-1e400", b"NaN", b"Infinity"]))
    body = json.dumps(_tensor(data=data)).encode().replace(b"12345.5", token)
    # NaN/Infinity are not JSON; 1e400 is JSON, out of range for a float.
    return _json_case("non_finite", body, "'input'", "json", "out of range")


def _http_name(draw: st.DrawFn) -> HttpCase:
    name = draw(NAMES)
    return _json_case("name", _tensor(name=name), repr(name), "'input'", "input")


def _http_json_type(draw: st.DrawFn) -> HttpCase:
    body: object = draw(
        st.sampled_from([[], 1, "x", None, {"inputs": {}}, {"inputs": [{"name": 1}]}])
        | st.builds(lambda s: {"inputs": s}, st.text(max_size=4))
    )
    return _json_case("json_type", body, "expected", "json", "body", "object", "inputs")


def _http_model(draw: st.DrawFn) -> HttpCase:
    model = draw(st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1))
    path = f"/v2/models/m{model}/infer"
    return _json_case("model", good_json(), "not found", "model", path=path)


def _http_version(draw: st.DrawFn) -> HttpCase:
    path = f"/v2/models/clf/versions/{draw(st.integers(2, 10**30))}/infer"
    return _json_case("version", good_json(), "not found", "version", path=path)


def _http_output(draw: st.DrawFn) -> HttpCase:
    body = {**good_json(), "outputs": [{"name": draw(NAMES.filter(bool))}]}
    return _json_case("output", body, "output")


def _http_size(draw: st.DrawFn) -> HttpCase:
    body = json.dumps(good_json()).encode() + b" " * draw(st.integers(LIMIT, 2 * LIMIT))
    return _json_case("size", body, "limit", "exceeds")


def _http_binary(draw: st.DrawFn) -> HttpCase:
    """The binary extension's head length or binary sizes do not add up."""
    raw = GOOD_X.tobytes()
    tensor = {k: v for k, v in good_json()["inputs"][0].items() if k != "data"}
    tensor["parameters"] = {"binary_data_size": draw(st.integers(len(raw) + 1, 10**6))}
    head = json.dumps({"inputs": [tensor]}).encode()
    length = draw(st.sampled_from([str(len(head)), str(len(head) + len(raw) + 1), "x"]))
    body = head + raw[: draw(st.integers(0, len(raw) - 1))]
    headers = JSON | {"inference-header-content-length": length}
    return "binary", INFER, body, headers, ("binary", "inference-header-content-length")


HTTP_CASES = {
    "datatype": _http_datatype,
    "shape": _http_shape,
    "data_type": _http_data_type,
    "data_length": _http_data_length,
    "non_finite": _http_non_finite,
    "name": _http_name,
    "json_type": _http_json_type,
    "model": _http_model,
    "version": _http_version,
    "output": _http_output,
    "size": _http_size,
    "binary": _http_binary,
}


@st.composite
def invalid_http(draw: st.DrawFn) -> HttpCase:
    """(kind, path, body, headers, words the error must contain one of)."""
    return HTTP_CASES[draw(st.sampled_from(sorted(HTTP_CASES)))](draw)


@pytest.mark.slow
def test_property_16_invalid_requests_rejected_http(live: Live) -> None:
    @PROPERTY
    @given(case=invalid_http())
    def check(case: HttpCase) -> None:
        kind, path, content, headers, words = case
        answer = live.request("POST", path, content=content, headers=headers)
        assert 400 <= answer.status_code < 500, (kind, answer.status_code, answer.text)
        message = answer.json()["error"].lower()
        assert any(w.lower() in message for w in words), (kind, message)
        live.assert_serves()

    check()


def _raw_request(**changes: Any) -> pb.ModelInferRequest:
    request = good_proto()
    tensor = request.inputs[0]
    for key, value in changes.items():
        if key == "raw":
            del request.raw_input_contents[:]
            request.raw_input_contents.extend(value)
        elif key == "shape":
            del tensor.shape[:]
            tensor.shape.extend(value)
        elif key in ("model_name", "model_version"):
            setattr(request, key, value)
        else:
            setattr(tensor, key, value)
    return request


def _typed_request(field: str, values: list[Any], datatype: str = "FP32") -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input", datatype=datatype, shape=list(GOOD_X.shape)
    )
    getattr(tensor.contents, field).extend(values)
    return pb.ModelInferRequest(model_name="clf", inputs=[tensor])


GrpcCase = tuple[str, Any, tuple[str, ...]]


def _grpc_datatype(draw: st.DrawFn) -> GrpcCase:
    return "datatype", _raw_request(datatype=draw(st.sampled_from(WRONG_DATATYPES))), ("'input'",)


def _grpc_shape(draw: st.DrawFn) -> GrpcCase:
    shape = draw(
        st.lists(st.integers(-(2**63), 2**63 - 1), max_size=4).filter(lambda s: s != [2, 4])
    )
    return "shape", _raw_request(shape=shape), ("'input'",)


def _grpc_byte_length(draw: st.DrawFn) -> GrpcCase:
    raw = GOOD_X.tobytes()
    size = draw(st.integers(0, 100).filter(lambda s: s != len(raw)))
    return "byte_length", _raw_request(raw=[(raw * 4)[:size]]), ("'input'",)


def _grpc_raw_count(draw: st.DrawFn) -> GrpcCase:
    request = _raw_request(raw=[GOOD_X.tobytes()] * draw(st.sampled_from([2, 3])))
    return "raw_count", request, ("raw_input_contents",)


def _grpc_typed_field(draw: st.DrawFn) -> GrpcCase:
    field = draw(st.sampled_from(["int64_contents", "int_contents", "fp64_contents"]))
    return "typed_field", _typed_request(field, [1] * GOOD_X.size), ("fp32_contents", field)


def _grpc_typed_count(draw: st.DrawFn) -> GrpcCase:
    count = draw(st.integers(0, 30).filter(lambda c: c != GOOD_X.size))
    return "typed_count", _typed_request("fp32_contents", [0.5] * count), ("'input'",)


def _grpc_mixed(draw: st.DrawFn) -> GrpcCase:
    request = good_proto()
    request.inputs[0].contents.fp32_contents.extend(GOOD_X.ravel().tolist())
    return "mixed", request, ("raw_input_contents", "typed")


def _grpc_name(draw: st.DrawFn) -> GrpcCase:
    name = draw(NAMES)
    return "name", _raw_request(name=name), (repr(name), "'input'", "input")


def _grpc_model(draw: st.DrawFn) -> GrpcCase:
    request = _raw_request(model_name="m" + draw(st.text(max_size=10)))
    return "model", request, ("not found", "model")


def _grpc_version(draw: st.DrawFn) -> GrpcCase:
    request = _raw_request(model_version=str(draw(st.integers(2, 10**30))))
    return "version", request, ("not found", "version")


def _grpc_non_finite(draw: st.DrawFn) -> GrpcCase:
    values = GOOD_X.copy()
    values.flat[draw(st.integers(0, GOOD_X.size - 1))] = draw(
        st.sampled_from([np.nan, np.inf, -np.inf])
    )
    return "non_finite", _raw_request(raw=[values.tobytes()]), ("'input'",)


def _grpc_protobuf(draw: st.DrawFn) -> GrpcCase:
    garbage = draw(st.binary(min_size=1, max_size=64).map(lambda b: b"\xff" + b))
    return "protobuf", garbage, ("protobuf",)


def _grpc_size(draw: st.DrawFn) -> GrpcCase:
    size = draw(st.integers(LIMIT + 1, 2 * LIMIT))
    return "size", _raw_request(raw=[b"\0" * size]), ("larger than", "max")


GRPC_CASES = {
    "size": _grpc_size,
    "datatype": _grpc_datatype,
    "shape": _grpc_shape,
    "byte_length": _grpc_byte_length,
    "raw_count": _grpc_raw_count,
    "typed_field": _grpc_typed_field,
    "typed_count": _grpc_typed_count,
    "mixed": _grpc_mixed,
    "name": _grpc_name,
    "model": _grpc_model,
    "version": _grpc_version,
    "non_finite": _grpc_non_finite,
    "protobuf": _grpc_protobuf,
}


@st.composite
def invalid_grpc(draw: st.DrawFn) -> GrpcCase:
    """(kind, request message or raw bytes, words the error must contain one of)."""
    return GRPC_CASES[draw(st.sampled_from(sorted(GRPC_CASES)))](draw)


async def _call_bytes(live: Live, data: bytes) -> tuple[grpc.StatusCode, str]:
    method = live.channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=None,
        response_deserializer=None,
    )
    try:
        await method(data, timeout=20)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def _stream_then_good(
    live: Live, data: bytes
) -> tuple[grpc.StatusCode, str, list[pb.ModelStreamInferResponse]]:
    """``data`` then a valid request (id ``after``) on one ModelStreamInfer call."""
    call = live.channel.stream_stream(
        "/inference.GRPCInferenceService/ModelStreamInfer",
        request_serializer=None,
        response_deserializer=pb.ModelStreamInferResponse.FromString,
    )
    after = good_proto()
    after.id = "after"

    async def messages() -> AsyncIterator[bytes]:
        yield data
        yield after.SerializeToString()

    try:
        answers = [answer async for answer in call(messages(), timeout=20)]
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or "", []
    return grpc.StatusCode.OK, "", answers


@pytest.mark.slow
def test_property_16_invalid_requests_rejected_grpc(live: Live) -> None:
    client_class = {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # over server.max_request_bytes
    }

    @PROPERTY
    @given(case=invalid_grpc())
    def check(case: GrpcCase) -> None:
        kind, request, words = case
        if isinstance(request, bytes):
            code, details = live.run(_call_bytes(live, request))
        else:
            code, details, _ = live.grpc("ModelInfer", request)
        assert code in client_class, (kind, code, details)
        assert any(w.lower() in details.lower() for w in words), (kind, details)
        # The same message on a stream: answered in place (error_message), and the stream
        # goes on to answer the next request; only a message over the size limit ends it.
        data = request if isinstance(request, bytes) else request.SerializeToString()
        code, details, answers = live.run(_stream_then_good(live, data))
        if code == grpc.StatusCode.OK:
            assert len(answers) == 2, (kind, answers)
            error = answers[0].error_message
            assert any(w.lower() in error.lower() for w in words), (kind, error)
            assert not answers[1].error_message, (kind, answers[1].error_message)
            assert answers[1].infer_response.id == "after"
            assert_good_proto_answer(answers[1].infer_response)
        else:
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (kind, code, details)
            assert len(data) > LIMIT, (kind, len(data), details)
        live.assert_serves()

    check()
