"""Bearer tokens over a real server on both protocols: admin calls guarded, inference open
unless its own token is set, health always open; every refusal a 401 / UNAUTHENTICATED."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
from modelyard.settings import ServerSettings, Settings

ADMIN = "adm-" + "x" * 28
INFER = "inf-" + "y" * 28


async def _start(
    repo: Path, *, admin_token: str = "", inference_token: str = ""
) -> InferenceServer:
    settings = Settings(
        server=ServerSettings(
            model_repository=str(repo),
            grpc_port=0,
            http_port=0,
            metrics_port=None,
            control_mode="explicit",
            admin_token=admin_token,
            inference_token=inference_token,
        )
    )
    server = InferenceServer(settings)
    await server.start()
    return server


@pytest.fixture
async def guarded(repo: Path, publish: Callable[..., Path]) -> AsyncIterator[InferenceServer]:
    publish("clf", 1)
    server = await _start(repo, admin_token=ADMIN)
    yield server
    await server.stop()


@pytest.fixture
async def fully_guarded(repo: Path, publish: Callable[..., Path]) -> AsyncIterator[InferenceServer]:
    publish("clf", 1)
    server = await _start(repo, admin_token=ADMIN, inference_token=INFER)
    yield server
    await server.stop()


def _infer_body() -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}]}


def _grpc_request() -> pb.ModelInferRequest:
    x = np.zeros((1, 4), np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    return pb.ModelInferRequest(model_name="clf", inputs=[tensor], raw_input_contents=[x.tobytes()])


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {ADMIN}", "Bearer", ADMIN])
async def test_http_admin_calls_need_the_admin_token(
    guarded: InferenceServer, header: str | None
) -> None:
    headers = {"authorization": header} if header is not None else {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{guarded.http_port}") as http:
        for action in ("load", "unload"):
            answer = await http.post(f"/v2/repository/models/clf/{action}", headers=headers)
            assert answer.status_code == 401, answer.text
            assert "bearer" in answer.json()["error"].lower()
            assert answer.headers["www-authenticate"].startswith("Bearer")
        # refused calls changed nothing; inference and health stay open without a token
        assert (await http.post("/v2/models/clf/infer", json=_infer_body())).status_code == 200
        assert (await http.get("/v2/health/ready")).status_code == 200


async def test_http_admin_token_accepted(guarded: InferenceServer) -> None:
    good = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{guarded.http_port}") as http:
        assert (await http.post("/v2/repository/models/clf/unload", headers=good)).is_success
        assert (await http.post("/v2/models/clf/infer", json=_infer_body())).status_code == 404
        assert (await http.post("/v2/repository/models/clf/load", headers=good)).is_success
        assert (await http.post("/v2/models/clf/infer", json=_infer_body())).status_code == 200


async def test_grpc_admin_calls_need_the_admin_token(guarded: InferenceServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{guarded.grpc_port}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        for metadata in [(), (("authorization", "Bearer nope"),)]:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.RepositoryModelUnload(
                    pb.RepositoryModelUnloadRequest(model_name="clf"), metadata=metadata
                )
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "bearer" in (caught.value.details() or "").lower()
        assert (await stub.ModelInfer(_grpc_request())).model_version == "1"
        good = (("authorization", f"Bearer {ADMIN}"),)
        await stub.RepositoryModelLoad(
            pb.RepositoryModelLoadRequest(model_name="clf"), metadata=good
        )


async def test_inference_token_guards_inference_on_both_protocols(
    fully_guarded: InferenceServer,
) -> None:
    server = fully_guarded
    good = {"authorization": f"Bearer {INFER}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
        assert (await http.post("/v2/models/clf/infer", json=_infer_body())).status_code == 401
        refused = await http.post("/predict?model=clf", json=[0, 0, 0, 0])
        assert refused.status_code == 401, refused.text
        # the admin token is not an inference token
        admin = {"authorization": f"Bearer {ADMIN}"}
        answer = await http.post("/v2/models/clf/infer", json=_infer_body(), headers=admin)
        assert answer.status_code == 401
        answer = await http.post("/v2/models/clf/infer", json=_infer_body(), headers=good)
        assert answer.status_code == 200
        assert (await http.post("/predict?model=clf", json=[0, 0, 0, 0], headers=good)).is_success
        assert (await http.get("/v2/models/clf")).status_code == 200  # metadata stays open
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ModelInfer(_grpc_request())
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        stream = stub.ModelStreamInfer(iter([_grpc_request()]))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in stream:
                pass
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        metadata = (("authorization", f"Bearer {INFER}"),)
        answer = await stub.ModelInfer(_grpc_request(), metadata=metadata)
        assert answer.model_version == "1"
        answers = [
            a async for a in stub.ModelStreamInfer(iter([_grpc_request()]), metadata=metadata)
        ]
        assert answers[0].infer_response.model_version == "1"
        assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
