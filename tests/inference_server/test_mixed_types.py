"""A real scikit-learn pipeline with a string column (BYTES input), through the service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference_server.core.tensors import encode_raw
from inference_server.core.types import InferRequest, RequestInput
from inference_server.service import InferenceService
from modelyard.errors import InvalidArgument
from modelyard.model_repository import publish_version

from .conftest import fit_mixed_type_pipeline, running_service


@pytest.fixture
def fitted() -> tuple[Any, Any, bytes]:
    return fit_mixed_type_pipeline()


@pytest.fixture
async def service(repo: Path, fitted: tuple[Any, Any, bytes]) -> AsyncIterator[InferenceService]:
    publish_version(repo, "churn", 1, {"model.onnx": fitted[2]})
    async with running_service(repo, mode="none") as svc:
        yield svc


async def test_bytes_input_and_rows_match_scikit_learn(
    service: InferenceService, fitted: tuple[Any, Any, bytes]
) -> None:
    pipeline, frame, _ = fitted
    sample = frame.iloc[:5]
    expected = pipeline.predict_proba(sample)
    age = sample[["age"]].to_numpy(np.float32)
    city = np.array([[c.encode()] for c in sample["city"]], dtype=object)
    request = InferRequest(
        model_name="churn",
        inputs=[
            RequestInput(name="age", datatype="FP32", shape=age.shape, data=age),
            RequestInput(name="city", datatype="BYTES", shape=city.shape, data=city),
        ],
    )
    response = await service.infer(request)
    outputs = {o.name: o for o in response.outputs}
    assert set(outputs) == {"label", "probabilities"}
    probs = outputs["probabilities"].data
    np.testing.assert_allclose(probs, expected, rtol=1e-4, atol=1e-6)
    rows = [
        {"age": float(a), "city": c} for a, c in zip(sample["age"], sample["city"], strict=True)
    ]
    result = await service.predict_rows("churn", rows)
    assert result.probabilities is not None
    assert result.labels is not None
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-4, atol=1e-6)
    assert [bool(v) for v in result.labels] == [bool(v) for v in pipeline.predict(sample)]
    label = outputs["label"]
    assert len(encode_raw(label.data, label.datatype)) == 5 * label.data.dtype.itemsize


async def test_wrong_type_for_string_column_is_a_clear_error(service: InferenceService) -> None:
    age = np.zeros((1, 1), np.float32)
    request = InferRequest(
        model_name="churn",
        inputs=[
            RequestInput(name="age", datatype="FP32", shape=(1, 1), data=age),
            RequestInput(name="city", datatype="FP32", shape=(1, 1), data=age),
        ],
    )
    with pytest.raises(InvalidArgument, match="'city': datatype FP32, the model expects BYTES"):
        await service.infer(request)
