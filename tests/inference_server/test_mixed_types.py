"""A real scikit-learn pipeline with a string column (BYTES input), through the service."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from inference_server.core.tensors import encode_raw
from inference_server.core.types import InferRequest, RequestInput
from inference_server.loaded_version import NullHooks
from inference_server.model_manager import ModelManager
from inference_server.repository import RepositoryWatcher
from inference_server.service import InferenceService
from modelyard.errors import InvalidArgument
from modelyard.model_repository import publish_version


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"age": rng.normal(40, 10, 300), "city": rng.choice(["oslo", "lima", "pune"], 300)}
    )
    target = (frame["age"] > 40) ^ (frame["city"] == "lima")
    pipeline = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, target)
    onnx_model = convert_sklearn(
        pipeline,
        initial_types=[("age", FloatTensorType([None, 1])), ("city", StringTensorType([None, 1]))],
        options={id(pipeline): {"zipmap": False}},
        target_opset=17,
    )
    return pipeline, frame, onnx_model.SerializeToString()


@pytest.fixture
async def service(repo, fitted):
    publish_version(repo, "churn", 1, {"model.onnx": fitted[2]})
    manager = ModelManager(repo, NullHooks())
    watcher = RepositoryWatcher(manager, mode="none")
    await watcher.start()
    yield InferenceService(manager, watcher, NullHooks())
    await manager.close()


async def test_bytes_input_and_rows_match_scikit_learn(service, fitted):
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
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-4, atol=1e-6)
    assert [bool(v) for v in result.labels] == [bool(v) for v in pipeline.predict(sample)]
    label = outputs["label"]
    assert len(encode_raw(label.data, label.datatype)) == 5 * label.data.dtype.itemsize


async def test_wrong_type_for_string_column_is_a_clear_error(service):
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
