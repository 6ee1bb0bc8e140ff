"""The simple JSON endpoints: /predict, /predict/batch, /health."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from inference_server.service import InferenceService

from ..conftest import classifier_reference

ROW = [0.5, -1.0, 2.0, 0.25]
FEATURES = {"f0": 0.5, "f1": -1.0, "f2": 2.0, "f3": 0.25}


def _expected(rows: list[list[float]]) -> np.ndarray:
    return classifier_reference(1, np.array(rows, dtype=np.float32))


@pytest.mark.parametrize("row", [ROW, FEATURES, dict(reversed(FEATURES.items()))])
async def test_predict_one_row(
    client: httpx.AsyncClient, row: list[float] | dict[str, float]
) -> None:
    response = await client.post("/predict", params={"model": "clf"}, json=row)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == "clf"
    assert result["version"] == "1"
    np.testing.assert_allclose(result["probabilities"], _expected([ROW])[0], rtol=1e-5)
    assert result["label"] == int(np.argmax(result["probabilities"]))
    assert result["class_labels"] == [0, 1]


async def test_predict_named_version(client: httpx.AsyncClient) -> None:
    response = await client.post("/predict", params={"model": "clf", "version": "2"}, json=ROW)
    assert response.json()["version"] == "2"
    np.testing.assert_allclose(
        response.json()["probabilities"],
        classifier_reference(2, np.array([ROW], dtype=np.float32))[0],
        rtol=1e-5,
    )


async def test_predict_batch(client: httpx.AsyncClient) -> None:
    rows = [ROW, FEATURES, [0, 0, 0, 0]]
    response = await client.post("/predict/batch?model=clf", json=rows)
    assert response.status_code == 200, response.text
    result = response.json()
    expected = _expected([ROW, ROW, [0, 0, 0, 0]])
    np.testing.assert_allclose(result["probabilities"], expected, rtol=1e-5)
    assert result["labels"] == expected.argmax(axis=1).tolist()


async def test_predict_without_a_model_uses_the_only_model(client: httpx.AsyncClient) -> None:
    response = await client.post("/predict", json=ROW)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "clf"
    np.testing.assert_allclose(response.json()["probabilities"], _expected([ROW])[0], rtol=1e-5)


async def test_predict_without_a_model_among_several_names_them(
    client: httpx.AsyncClient, service: InferenceService, publish: Callable[..., Path]
) -> None:
    publish("other", 1)
    await service.load_model("other")
    response = await client.post("/predict", json=ROW)
    assert response.status_code == 400
    assert "models served: clf, other" in response.json()["error"]
    good = await client.post("/predict?model=other", json=ROW)
    assert good.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/predict?model=nope", ROW, 404, "'nope'"),
        ("/predict?model=clf&version=7", ROW, 404, "version 7"),
        ("/predict?model=clf", ROW[:3], 400, "3 values"),
        ("/predict?model=clf", {"f0": 1}, 400, "missing feature 'f1'"),
        ("/predict?model=clf", {**FEATURES, "zz": 1}, 400, "unknown feature 'zz'"),
        ("/predict?model=clf", ["a", "b", "c", "d"], 400, "'input'"),
        ("/predict?model=clf", 5, 400, "Expected"),
        ("/predict/batch?model=clf", [], 400, "no rows"),
        ("/predict/batch?model=clf", ROW, 400, "Expected"),
    ],
)
async def test_predict_bad_input_then_good(
    client: httpx.AsyncClient, path: str, body: object, status: int, message: str
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    good = await client.post("/predict?model=clf", json=ROW)
    assert good.status_code == 200


async def test_health(client: httpx.AsyncClient, service: InferenceService) -> None:
    response = await client.get("/health")
    assert response.json() == {"status": "ok", "live": True, "ready": True}
    service.ready = False
    response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


async def test_ab_routes_over_http_keep_a_routing_key_on_its_arm(
    client: httpx.AsyncClient, service: InferenceService, repo: Path
) -> None:
    from inference_server.routing import key_fraction
    from modelyard.enums import ModelVariant
    from modelyard.model_repository import ModelConfig, Route, VersionPolicy, write_model_config

    routes = (
        Route(version=1, weight=1.0),
        Route(version=2, weight=1.0, variant=ModelVariant.TREATMENT),
    )
    policy = VersionPolicy(kind="all")
    write_model_config(repo / "clf", ModelConfig(version_policy=policy, routes=routes))
    await service.load_model("clf")
    for key in ("user-1", "user-2", "user-3", "user-4"):
        expected = ("1", "control") if key_fraction(key) < 0.5 else ("2", "treatment")
        for _ in range(3):
            response = await client.post(
                "/predict", params={"model": "clf", "routing_key": key}, json=ROW
            )
            assert response.status_code == 200, response.text
            assert (response.json()["version"], response.json()["variant"]) == expected
        body = {
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROW}],
            "parameters": {"routing_key": key},
        }
        oip = await client.post("/v2/models/clf/infer", json=body)
        assert oip.status_code == 200, oip.text
        assert oip.json()["model_version"] == expected[0]
        assert oip.json()["parameters"] == {"routing_key": key}
