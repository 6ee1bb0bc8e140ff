"""The gRPC adapter against a real in-process server on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
import pytest

from inference_server.grpc._generated import grpc_service_pb2 as pb

from .conftest import classifier_reference

if TYPE_CHECKING:
    from inference_server.app import InferenceServer
    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg


def _raw_request(x: np.ndarray, **kw: Any) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    return pb.ModelInferRequest(
        model_name="clf", inputs=[tensor], raw_input_contents=[x.astype("<f4").tobytes()], **kw
    )


def _typed_request(x: np.ndarray, **kw: Any) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype="FP32",
        shape=x.shape,
        contents=pb.InferTensorContents(fp32_contents=x.reshape(-1).tolist()),
    )
    return pb.ModelInferRequest(model_name="clf", inputs=[tensor], **kw)


async def test_health_and_metadata(stub: pbg.GRPCInferenceServiceStub) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="clf"))).ready
    meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="clf"))
    assert meta.versions == ["1"]
    assert list(meta.inputs[0].shape) == [-1, 4]
    server_meta = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert server_meta.name == "modelyard"
    config = (await stub.ModelConfig(pb.ModelConfigRequest(name="clf"))).config
    assert config.max_batch_size == 64
    assert list(config.input[0].dims) == [4]
    assert config.HasField("dynamic_batching")


async def test_raw_request_gets_raw_response(stub: pbg.GRPCInferenceServiceStub) -> None:
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    params = {"trace": pb.InferParameter(string_param="abc")}
    resp = await stub.ModelInfer(_raw_request(x, id="req-7", parameters=params))
    assert resp.id == "req-7"
    assert resp.model_version == "1"
    assert resp.parameters["trace"].string_param == "abc"
    names = [o.name for o in resp.outputs]
    probs = np.frombuffer(resp.raw_output_contents[names.index("probabilities")], "<f4")
    np.testing.assert_allclose(probs.reshape(3, 2), classifier_reference(1, x), rtol=1e-5)
    labels = np.frombuffer(resp.raw_output_contents[names.index("label")], "<i8")
    assert labels.shape == (3,)


async def test_typed_request_gets_typed_response(stub: pbg.GRPCInferenceServiceStub) -> None:
    x = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    resp = await stub.ModelInfer(_typed_request(x))
    assert not resp.raw_output_contents
    out = {o.name: o for o in resp.outputs}
    probs = np.array(out["probabilities"].contents.fp32_contents).reshape(2, 2)
    np.testing.assert_allclose(probs, classifier_reference(1, x), rtol=1e-5)
    assert len(out["label"].contents.int64_contents) == 2


async def _expect(
    stub: pbg.GRPCInferenceServiceStub,
    request: pb.ModelInferRequest,
    code: grpc.StatusCode,
    match: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(request)
    assert info.value.code() == code, info.value.details()
    details = info.value.details()
    assert details is not None
    assert match in details
    good = await stub.ModelInfer(_raw_request(np.zeros((1, 4), np.float32)))
    assert good.model_version == "1"


@pytest.mark.parametrize(
    ("mutate", "code", "match"),
    [
        (lambda r: setattr(r, "model_name", "nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (lambda r: setattr(r, "model_version", "9"), grpc.StatusCode.NOT_FOUND, "version 9"),
        (
            lambda r: setattr(r.inputs[0], "datatype", "FP64"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "needs 32",
        ),
        (
            lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 12),
            grpc.StatusCode.INVALID_ARGUMENT,
            "12 bytes",
        ),
        (
            lambda r: r.inputs[0].shape.__setitem__(1, 3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "needs 12",
        ),
        (
            lambda r: setattr(r.inputs[0], "name", "x"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "unexpected input 'x'",
        ),
    ],
)
async def test_bad_requests_then_good(
    stub: pbg.GRPCInferenceServiceStub,
    mutate: Callable[[pb.ModelInferRequest], object],
    code: grpc.StatusCode,
    match: str,
) -> None:
    request = _raw_request(np.zeros((1, 4), np.float32))
    mutate(request)
    await _expect(stub, request, code, match)


async def test_bad_feature_count_and_empty_and_nan(stub: pbg.GRPCInferenceServiceStub) -> None:
    await _expect(
        stub,
        _raw_request(np.zeros((1, 3), np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "4 features",
    )
    await _expect(
        stub, _raw_request(np.zeros((0, 4), np.float32)), grpc.StatusCode.INVALID_ARGUMENT, "empty"
    )
    nan = np.array([[np.nan, 1, 2, 3]], np.float32)
    await _expect(stub, _raw_request(nan), grpc.StatusCode.INVALID_ARGUMENT, "NaN")
    await _expect(
        stub, pb.ModelInferRequest(model_name="clf"), grpc.StatusCode.INVALID_ARGUMENT, "no inputs"
    )


async def test_malformed_and_oversized(
    server: InferenceServer, stub: pbg.GRPCInferenceServiceStub
) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    call = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=None,
        response_deserializer=None,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(b"\xff\xff\xff\xff")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    big = np.zeros((70_000, 4), np.float32)  # 1.1 MB > the 1 MiB test limit
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(_raw_request(big))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await channel.close(None)
    good = await stub.ModelInfer(_raw_request(np.zeros((1, 4), np.float32)))
    assert good.model_version == "1"


async def test_stream_infer(stub: pbg.GRPCInferenceServiceStub) -> None:
    xs = [np.full((1, 4), i, np.float32) for i in range(20)]

    async def requests() -> AsyncIterator[pb.ModelInferRequest]:
        for i, x in enumerate(xs):
            yield _raw_request(x, id=str(i))
        yield pb.ModelInferRequest(model_name="nope", id="bad")

    answers = [a async for a in stub.ModelStreamInfer(requests())]
    assert len(answers) == 21
    errors = [a for a in answers if a.error_message]
    assert [e.infer_response.id for e in errors] == ["bad"]
    ok = {a.infer_response.id for a in answers if not a.error_message}
    assert ok == {str(i) for i in range(20)}


async def test_stream_answers_follow_request_order_and_carry_the_request_id(
    stub: pbg.GRPCInferenceServiceStub,
) -> None:
    """Requests of mixed sizes run concurrently (batched together) yet come back in order."""
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(1 + i % 5, 4)).astype(np.float32) for i in range(60)]

    async def requests() -> AsyncIterator[pb.ModelInferRequest]:
        for i, x in enumerate(xs):
            yield _raw_request(x, id=f"r{i}")
            if i == 30:
                yield pb.ModelInferRequest(model_name="nope", id="bad")

    answers = [a async for a in stub.ModelStreamInfer(requests())]
    ids = [a.infer_response.id for a in answers]
    assert ids == [f"r{i}" for i in range(31)] + ["bad"] + [f"r{i}" for i in range(31, 60)]
    ok = [a.infer_response for a in answers if not a.error_message]
    for x, answer in zip(xs, ok, strict=True):
        index = [o.name for o in answer.outputs].index("probabilities")
        got = np.frombuffer(answer.raw_output_contents[index], dtype=np.float32).reshape(-1, 2)
        np.testing.assert_allclose(got, classifier_reference(1, x), rtol=1e-5)


async def test_repository_control_and_statistics(stub: pbg.GRPCInferenceServiceStub) -> None:
    index = await stub.RepositoryIndex(pb.RepositoryIndexRequest())
    assert [(m.name, m.version, m.state) for m in index.models] == [("clf", "1", "READY")]
    await stub.ModelInfer(_raw_request(np.zeros((2, 4), np.float32)))
    stats = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="clf"))
    assert stats.model_stats[0].inference_count >= 2
    await stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="clf"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ModelInfer(_raw_request(np.zeros((1, 4), np.float32)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    await stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="clf"))
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="clf"))).ready
