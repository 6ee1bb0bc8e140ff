"""The OIP REST routes of a real server: health, metadata, infer (JSON and binary), repository."""

from __future__ import annotations

import json
import struct
from typing import Any

import httpx
import numpy as np
import pytest

from inference_server.service import InferenceService

from ..conftest import classifier_reference

X = np.random.default_rng(7).normal(size=(3, 4)).astype(np.float32)


def _json_infer(x: np.ndarray, *, nested: bool = False, **extra: object) -> dict[str, Any]:
    data = x.tolist() if nested else x.ravel().tolist()
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": data}
    return {"inputs": [tensor], **extra}


async def test_health_and_server_metadata(
    client: httpx.AsyncClient, service: InferenceService
) -> None:
    assert (await client.get("/v2/health/live")).status_code == 200
    assert (await client.get("/v2/health/ready")).status_code == 200
    meta = (await client.get("/v2")).json()
    assert meta["name"] == "modelyard"
    assert "binary_tensor_data" in meta["extensions"]
    service.ready = False
    assert (await client.get("/v2/health/ready")).status_code == 503
    assert (await client.get("/v2/health/live")).status_code == 200


async def test_model_ready_and_metadata(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/models/clf/ready")).status_code == 200
    assert (await client.get("/v2/models/clf/versions/1/ready")).status_code == 200
    meta = (await client.get("/v2/models/clf")).json()
    assert meta["name"] == "clf"
    assert meta["versions"] == ["1", "2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["label", "probabilities"]
    v1 = await client.get("/v2/models/clf/versions/1")
    assert v1.status_code == 200
    config = (await client.get("/v2/models/clf/config")).json()
    assert config["name"] == "clf"
    assert config["platform"] == "onnxruntime_onnx"


@pytest.mark.parametrize("nested", [False, True])
async def test_infer_json(client: httpx.AsyncClient, nested: bool) -> None:
    body = _json_infer(X, nested=nested, id="req-1", parameters={"trace": "abc"})
    response = await client.post("/v2/models/clf/versions/1/infer", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model_name"] == "clf"
    assert result["model_version"] == "1"
    assert result["id"] == "req-1"
    assert result["parameters"] == {"trace": "abc"}
    outputs = {o["name"]: o for o in result["outputs"]}
    probs = np.array(outputs["probabilities"]["data"]).reshape(outputs["probabilities"]["shape"])
    np.testing.assert_allclose(probs, classifier_reference(1, X), rtol=1e-5)
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == probs.argmax(axis=1).tolist()


async def test_infer_default_version_and_selected_outputs(client: httpx.AsyncClient) -> None:
    body = _json_infer(X, outputs=[{"name": "label"}])
    result = (await client.post("/v2/models/clf/infer", json=body)).json()
    assert result["model_version"] == "1"  # config.json's default_version
    assert [o["name"] for o in result["outputs"]] == ["label"]
    assert "id" not in result


def _binary_body(
    x: np.ndarray, outputs: list[dict[str, Any]] | None, **parameters: object
) -> tuple[bytes, dict[str, str]]:
    raw = x.tobytes()
    head: dict[str, Any] = {
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ]
    }
    if outputs is not None:
        head["outputs"] = outputs
    if parameters:
        head["parameters"] = parameters
    encoded = json.dumps(head).encode()
    headers = {
        "Inference-Header-Content-Length": str(len(encoded)),
        "Content-Type": "application/octet-stream",
    }
    return encoded + raw, headers


def _split_binary(response: httpx.Response) -> tuple[dict[str, Any], dict[str, bytes]]:
    cut = int(response.headers["inference-header-content-length"])
    head = json.loads(response.content[:cut])
    rest = response.content[cut:]
    chunks: dict[str, bytes] = {}
    for output in head["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            chunks[output["name"]], rest = rest[:size], rest[size:]
    assert rest == b""
    return head, chunks


async def test_infer_binary_in_and_out(client: httpx.AsyncClient) -> None:
    body, headers = _binary_body(X, None, binary_data_output=True)
    response = await client.post("/v2/models/clf/versions/1/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    head, chunks = _split_binary(response)
    assert "binary_data_output" not in head.get("parameters", {})
    probs = np.frombuffer(chunks["probabilities"], dtype="<f4").reshape(3, 2)
    np.testing.assert_allclose(probs, classifier_reference(1, X), rtol=1e-5)
    labels = np.frombuffer(chunks["label"], dtype="<i8")
    assert labels.tolist() == probs.argmax(axis=1).tolist()


async def test_infer_binary_in_mixed_out(client: httpx.AsyncClient) -> None:
    outputs = [
        {"name": "probabilities", "parameters": {"binary_data": True}},
        {"name": "label", "parameters": {"binary_data": False}},
    ]
    body, headers = _binary_body(X, outputs)
    response = await client.post("/v2/models/clf/versions/1/infer", content=body, headers=headers)
    head, chunks = _split_binary(response)
    assert list(chunks) == ["probabilities"]
    by_name = {o["name"]: o for o in head["outputs"]}
    probs = np.frombuffer(chunks["probabilities"], dtype="<f4").reshape(3, 2)
    assert by_name["label"]["data"] == probs.argmax(axis=1).tolist()


async def test_binary_in_json_out_without_header_is_json(client: httpx.AsyncClient) -> None:
    body, headers = _binary_body(X, [{"name": "label"}])
    response = await client.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 200
    assert "inference-header-content-length" not in response.headers
    assert len(response.json()["outputs"][0]["data"]) == 3


async def test_repository_index_unload_load(client: httpx.AsyncClient) -> None:
    index = (await client.post("/v2/repository/index")).json()
    assert {(m["name"], m["version"], m["state"]) for m in index} >= {
        ("clf", "1", "READY"),
        ("clf", "2", "READY"),
    }
    ready_only = await client.post("/v2/repository/index", json={"ready": True})
    assert ready_only.status_code == 200
    assert (await client.post("/v2/repository/models/clf/unload")).status_code == 200
    gone = await client.post("/v2/models/clf/infer", json=_json_infer(X))
    assert gone.status_code in (404, 503)
    assert "error" in gone.json()
    assert (await client.post("/v2/repository/models/clf/load", json={})).status_code == 200
    again = await client.post("/v2/models/clf/infer", json=_json_infer(X))
    assert again.status_code == 200
    missing = await client.post("/v2/repository/models/nope/load")
    assert missing.status_code == 404


async def test_model_statistics(client: httpx.AsyncClient) -> None:
    await client.post("/v2/models/clf/infer", json=_json_infer(X))
    stats = (await client.get("/v2/models/clf/versions/1/stats")).json()["model_stats"]
    assert stats[0]["name"] == "clf"
    assert stats[0]["success_count"] >= 1


def test_bytes_helper_layout() -> None:
    # The binary extension's BYTES layout: 4-byte little-endian length, then the bytes.
    assert struct.pack("<I", 2) + b"ab" == b"\x02\x00\x00\x00ab"
