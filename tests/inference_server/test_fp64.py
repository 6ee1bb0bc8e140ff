"""An FP64 model (``converters`` with ``--precision auto`` on float32-hostile data), served.

The data hold epoch-second timestamps and cent amounts beyond 2^24: FP32 cannot represent
them, so the converter writes a double graph. Over gRPC (typed and raw), HTTP OIP (JSON and
binary) and the simple JSON endpoint the answers equal the native model's on the float64
values; FP32 requests are accepted, widened, and answer for the FP32-rounded values.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import httpx
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from converters import convert
from inference_server.grpc._generated import grpc_service_pb2 as pb
from modelyard.model_repository import publish_version

from .conftest import serve_subprocess

if TYPE_CHECKING:
    from inference_server.app import InferenceServer
    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg

FEATURES = ["ts", "amount_cents", "score"]


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ts": 1_700_000_000 + rng.integers(0, 400, rows) * 3,
            "amount_cents": 2**30 + rng.integers(0, 200, rows) * 5,
            "score": rng.normal(size=rows),
        }
    ).astype(np.float64)


@pytest.fixture(scope="module")
def fitted() -> tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]:
    train = _table(600, 0)
    target = ((train["ts"] % 2 == 0) ^ (train["amount_cents"] % 10 == 0)).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, min_child_samples=2, n_jobs=1, verbose=-1)
    model.fit(train, target)
    result = convert(model, train)
    assert result.fidelity.precision == "float64"
    assert result.fidelity.within_tolerance, result.fidelity.summary()
    return model, _table(40, 1), result.onnx


@pytest.fixture
async def server(
    repo: Path, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> AsyncIterator[InferenceServer]:
    from inference_server.app import InferenceServer
    from modelyard.settings import ServerSettings, Settings

    publish_version(repo, "ts", 1, {"model.onnx": fitted[2]})
    settings = Settings(
        server=ServerSettings(
            model_repository=str(repo),
            grpc_port=0,
            http_port=0,
            metrics_port=None,
            control_mode="poll",
        )
    )
    srv = InferenceServer(settings)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def client(server: InferenceServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
        yield http


@pytest.fixture
async def stub(server: InferenceServer) -> AsyncIterator[pbg.GRPCInferenceServiceStub]:
    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    yield pbg.GRPCInferenceServiceStub(channel)
    await channel.close(None)


def _native(model: lgb.LGBMClassifier, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame))


def _assert_native(probabilities: object, expected: np.ndarray) -> None:
    got = np.asarray(probabilities, dtype=np.float64).reshape(expected.shape)
    assert np.abs(got - expected).max() <= 1e-5
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()


async def test_metadata_says_fp64_and_the_data_is_float32_hostile(
    client: httpx.AsyncClient, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> None:
    model, frame, _ = fitted
    meta = (await client.get("/v2/models/ts")).json()
    assert meta["inputs"][0]["datatype"] == "FP64"
    rounded = frame.astype(np.float32).astype(np.float64)
    # Without doubles these rows would be answered differently: the test proves something.
    assert (np.abs(_native(model, rounded) - _native(model, frame)).max(axis=1) > 1e-3).any()


async def test_simple_json_numbers_are_parsed_as_doubles(
    client: httpx.AsyncClient, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> None:
    model, frame, _ = fitted
    rows = [{k: float(v) for k, v in row.items()} for row in frame.to_dict("records")]
    response = await client.post("/predict/batch", params={"model": "ts"}, json=rows)
    assert response.status_code == 200, response.text
    _assert_native(response.json()["probabilities"], _native(model, frame))
    one = await client.post("/predict", params={"model": "ts"}, json=list(frame.iloc[0]))
    _assert_native([one.json()["probabilities"]], _native(model, frame.iloc[:1]))


async def test_oip_json_and_binary_fp64(
    client: httpx.AsyncClient, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> None:
    model, frame, _ = fitted
    x = frame.to_numpy(np.float64)
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP64"}
    response = await client.post(
        "/v2/models/ts/infer", json={"inputs": [{**tensor, "data": x.reshape(-1).tolist()}]}
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    _assert_native(outputs["probabilities"]["data"], _native(model, frame))
    head = json.dumps(
        {"inputs": [{**tensor, "parameters": {"binary_data_size": x.nbytes}}]}
    ).encode()
    headers = {"Inference-Header-Content-Length": str(len(head))}
    binary = await client.post("/v2/models/ts/infer", content=head + x.tobytes(), headers=headers)
    assert binary.status_code == 200, binary.text
    outputs = {o["name"]: o for o in binary.json()["outputs"]}
    _assert_native(outputs["probabilities"]["data"], _native(model, frame))


async def test_fp32_requests_are_widened_and_answer_for_the_rounded_values(
    client: httpx.AsyncClient, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> None:
    model, frame, _ = fitted
    x = frame.to_numpy(np.float32)
    body = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                        "data": x.reshape(-1).tolist()}]}  # fmt: skip
    response = await client.post("/v2/models/ts/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    rounded = pd.DataFrame(x.astype(np.float64), columns=FEATURES)
    _assert_native(outputs["probabilities"]["data"], _native(model, rounded))


async def test_grpc_typed_and_raw_fp64_and_fp32(
    stub: pbg.GRPCInferenceServiceStub, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> None:
    model, frame, _ = fitted
    x = frame.to_numpy(np.float64)
    meta = await stub.ModelMetadata(pb.ModelMetadataRequest(name="ts"))
    assert meta.inputs[0].datatype == "FP64"
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP64", shape=x.shape)
    typed = pb.ModelInferRequest.InferInputTensor(
        name="input",
        datatype="FP64",
        shape=x.shape,
        contents=pb.InferTensorContents(fp64_contents=x.reshape(-1).tolist()),
    )
    expected = _native(model, frame)
    for request in (
        pb.ModelInferRequest(model_name="ts", inputs=[typed]),
        pb.ModelInferRequest(model_name="ts", inputs=[tensor], raw_input_contents=[x.tobytes()]),
    ):
        response = await stub.ModelInfer(request)
        index = [o.name for o in response.outputs].index("probabilities")
        raw = response.raw_output_contents
        probabilities = (
            np.frombuffer(raw[index], "<f4")
            if raw
            else np.array(response.outputs[index].contents.fp32_contents)
        )
        _assert_native(probabilities, expected)
    x32 = frame.to_numpy(np.float32)
    narrow = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    response = await stub.ModelInfer(
        pb.ModelInferRequest(model_name="ts", inputs=[narrow], raw_input_contents=[x32.tobytes()])
    )
    index = [o.name for o in response.outputs].index("probabilities")
    rounded = pd.DataFrame(x32.astype(np.float64), columns=FEATURES)
    _assert_native(
        np.frombuffer(response.raw_output_contents[index], "<f4"), _native(model, rounded)
    )


async def test_other_datatypes_are_still_refused(stub: pbg.GRPCInferenceServiceStub) -> None:
    x = np.zeros((1, 3), np.int64)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="INT64", shape=x.shape)
    with pytest.raises(grpc.aio.AioRpcError, match="datatype INT64, the model expects FP64"):
        await stub.ModelInfer(
            pb.ModelInferRequest(model_name="ts", inputs=[tensor], raw_input_contents=[x.tobytes()])
        )


@pytest.mark.slow
def test_tritonclient_grpc_and_http_send_fp64(
    repo: Path,
    fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes],
    tmp_path: Path,
    clients_python: Path,
) -> None:
    model, frame, onnx = fitted
    publish_version(repo, "ts", 1, {"model.onnx": onnx})
    ports = ("--grpc-port", "0", "--http-port", "0", "--metrics-port", "-1", "--workers", "1")
    with serve_subprocess(repo, *ports) as proc:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        case = {
            "grpc_url": f"127.0.0.1:{ready['grpc_port']}",
            "http_url": f"127.0.0.1:{ready['http_port']}",
            "model": "ts",
            "x": frame.to_numpy(np.float64).tolist(),
            "probabilities": _native(model, frame).tolist(),
        }
        case_file = tmp_path / "case.json"
        case_file.write_text(json.dumps(case))
        script = Path(__file__).parent / "clients" / "tritonclient_fp64_check.py"
        done = subprocess.run(
            [str(clients_python), str(script), str(case_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        proc.terminate()
        proc.wait(timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_perf_analyzer_drives_an_fp64_model(
    repo: Path, fitted: tuple[lgb.LGBMClassifier, pd.DataFrame, bytes]
) -> None:
    from benchmarks.perf_analyzer import LIBB64, cuda_lib_dir, perf_analyzer_venv

    from .conftest import ROOT

    venv = perf_analyzer_venv(ROOT / "benchmarks" / ".work")
    if not (venv / "bin" / "perf_analyzer").exists() or not LIBB64.exists():
        pytest.skip("no perf_analyzer venv or libb64-0d (make install)")
    publish_version(repo, "ts", 1, {"model.onnx": fitted[2]})
    ports = ("--grpc-port", "0", "--http-port", "-1", "--metrics-port", "-1", "--workers", "1")
    with serve_subprocess(repo, *ports) as server:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["grpc_port"]
        done = subprocess.run(
            [str(venv / "bin" / "perf_analyzer"), "-m", "ts", "-u", f"127.0.0.1:{port}",
             "-i", "grpc", "--concurrency-range", "2", "-p", "500", "-s", "100",
             "--shape", "input:1,3"],
            capture_output=True,
            text=True,
            timeout=120,
            env={"LD_LIBRARY_PATH": str(cuda_lib_dir(venv)), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        server.terminate()
        assert server.wait(timeout=30) == 0
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Concurrency: 2, throughput:" in done.stdout, done.stdout
