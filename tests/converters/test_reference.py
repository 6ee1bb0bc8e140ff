"""The reference benchmark model: the shape the server and benchmarks rely on, deterministic."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from converters.reference import REFERENCE, SMALL, build_reference
from modelyard.models import TensorSpec


def test_small_reference_is_deterministic_and_shaped_like_the_full_one() -> None:
    first = build_reference(SMALL)
    second = build_reference(SMALL)

    assert first.conversion.onnx == second.conversion.onnx
    signature = first.conversion.signature
    assert signature.inputs == (TensorSpec(name="input", datatype="FP32", shape=(-1, 32)),)
    assert [o.name for o in signature.outputs] == ["label", "probabilities"]
    assert first.conversion.fidelity.label_agreement == 1.0
    assert first.conversion.fidelity.max_abs_diff <= 1e-5
    assert first.model.booster_.num_trees() == SMALL.n_trees
    assert first.features.dtype == np.float32
    assert first.features.shape == (SMALL.n_samples, 32)


@pytest.mark.slow
def test_full_reference_model() -> None:
    built = build_reference(REFERENCE)

    booster = built.model.booster_
    assert booster.num_trees() == 300
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) == 31
    conversion = built.conversion
    assert conversion.fidelity.max_abs_diff <= 1e-5
    assert conversion.fidelity.label_agreement == 1.0
    assert json.loads(conversion.metadata["modelyard.class_labels"]) == [0, 1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(conversion.onnx, options, providers=["CPUExecutionProvider"])
    rows = built.features[-256:]
    labels, probabilities = session.run(None, {"input": rows})
    native = np.asarray(built.model.predict_proba(rows.astype(np.float64)))
    assert np.abs(probabilities - native).max() <= 1e-5
    assert (labels == native.argmax(axis=1)).all()
