"""A scikit-learn pipeline with a string column and string classes over HTTP: BYTES tensors
in JSON and in the binary extension, both ways, and /predict rows by feature name."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from inference_server.http import start_http_server
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings

from ..conftest import fit_mixed_type_pipeline, running_service


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any, bytes]:
    return fit_mixed_type_pipeline(label_names=("churn", "stay"))


@pytest.fixture
async def client(repo: Path, fitted: tuple[Any, Any, bytes]) -> AsyncIterator[httpx.AsyncClient]:
    publish_version(repo, "churn", 1, {"model.onnx": fitted[2]})
    async with running_service(repo, mode="none") as service:
        server = await start_http_server(service, "127.0.0.1", 0, ServerSettings())
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            yield http
        await server.close()


def _bytes_tensor(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def _read_bytes_tensor(raw: bytes) -> list[str]:
    out, pos = [], 0
    while pos < len(raw):
        (size,) = struct.unpack_from("<I", raw, pos)
        out.append(raw[pos + 4 : pos + 4 + size].decode())
        pos += 4 + size
    return out


async def test_json_bytes_in_and_out(
    client: httpx.AsyncClient, fitted: tuple[Any, Any, bytes]
) -> None:
    pipeline, frame, _ = fitted
    sample = frame.iloc[:4]
    body = {
        "inputs": [
            {"name": "age", "shape": [4, 1], "datatype": "FP32", "data": sample["age"].tolist()},
            {"name": "city", "shape": [4, 1], "datatype": "BYTES", "data": list(sample["city"])},
        ]
    }
    response = await client.post("/v2/models/churn/infer", json=body)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["label"]["datatype"] == "BYTES"
    assert outputs["label"]["data"] == list(pipeline.predict(sample))
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], (4, 2)),
        pipeline.predict_proba(sample),
        rtol=1e-4,
    )


async def test_binary_bytes_in_and_out(
    client: httpx.AsyncClient, fitted: tuple[Any, Any, bytes]
) -> None:
    pipeline, frame, _ = fitted
    sample = frame.iloc[:3]
    age = sample["age"].to_numpy(np.float32).tobytes()
    city = _bytes_tensor(list(sample["city"]))
    head = {
        "inputs": [
            {
                "name": "age",
                "shape": [3, 1],
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(age)},
            },
            {
                "name": "city",
                "shape": [3, 1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(city)},
            },
        ],
        "outputs": [{"name": "label", "parameters": {"binary_data": True}}],
    }
    encoded = json.dumps(head).encode()
    response = await client.post(
        "/v2/models/churn/infer",
        content=encoded + age + city,
        headers={"Inference-Header-Content-Length": str(len(encoded))},
    )
    assert response.status_code == 200, response.text
    cut = int(response.headers["inference-header-content-length"])
    out = json.loads(response.content[:cut])["outputs"][0]
    assert out["datatype"] == "BYTES"
    assert out["parameters"]["binary_data_size"] == len(response.content) - cut
    assert _read_bytes_tensor(response.content[cut:]) == list(pipeline.predict(sample))


async def test_predict_rows_by_feature_name(
    client: httpx.AsyncClient, fitted: tuple[Any, Any, bytes]
) -> None:
    pipeline, frame, _ = fitted
    sample = frame.iloc[:2]
    rows = [{"age": float(a), "city": c} for a, c in sample[["age", "city"]].itertuples(False)]
    one = await client.post("/predict?model=churn", json=rows[0])
    assert one.status_code == 200, one.text
    assert one.json()["label"] == pipeline.predict(sample.iloc[:1])[0]
    many = (await client.post("/predict/batch?model=churn", json=rows)).json()
    assert many["labels"] == list(pipeline.predict(sample))
    np.testing.assert_allclose(many["probabilities"], pipeline.predict_proba(sample), rtol=1e-4)
    bad = await client.post("/predict?model=churn", json={"age": 1.0})
    assert bad.status_code == 400
    assert "city" in bad.json()["error"]
