"""Every supported kind on scikit-learn's bundled data sets: converts within tolerance."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from converters import FidelityError, convert
from tests.converters.kinds import CLASSIFIERS, REGRESSORS, needs_bucket, with_bucket

CLASSIFICATION_SETS = {"breast_cancer": load_breast_cancer, "wine": load_wine, "iris": load_iris}


def _frame(loader: Callable[..., Any], kind: str) -> tuple[pd.DataFrame, pd.Series]:
    features, target = loader(return_X_y=True, as_frame=True)
    return (with_bucket(features) if needs_bucket(kind) else features), target


@pytest.mark.parametrize("dataset", sorted(CLASSIFICATION_SETS))
@pytest.mark.parametrize("kind", sorted(CLASSIFIERS))
def test_classifier_agrees_on_every_row(kind: str, dataset: str) -> None:
    features, target = _frame(CLASSIFICATION_SETS[dataset], kind)
    model = CLASSIFIERS[kind](features, target, 20)

    result = convert(model, features)

    report = result.fidelity
    assert report.within_tolerance, report.summary()
    assert report.label_agreement == 1.0
    assert report.max_abs_diff <= 1e-5
    assert report.disagreeing_rows == ()
    assert report.rows == len(features)
    outputs = {o.name: o for o in result.signature.outputs}
    n_classes = target.nunique()
    assert outputs["label"].shape == (-1,)
    assert outputs["probabilities"].shape == (-1, n_classes)
    assert outputs["probabilities"].datatype == "FP32"
    assert json.loads(result.metadata["modelyard.class_labels"]) == sorted(target.unique())


@pytest.mark.parametrize("kind", sorted(REGRESSORS))
def test_regressor_agrees_on_diabetes(kind: str) -> None:
    features, target = _frame(load_diabetes, kind)
    model = REGRESSORS[kind](features, target, 20)

    result = convert(model, features)

    assert result.fidelity.within_tolerance, result.fidelity.summary()
    assert result.fidelity.max_rel_diff <= 1e-5
    assert [(o.name, o.datatype, o.shape) for o in result.signature.outputs] == [
        ("prediction", "FP32", (-1, 1))
    ]


@pytest.mark.parametrize("kind", ["LGBMClassifier", "XGBClassifier", "RandomForestClassifier"])
def test_onnx_output_matches_the_report(kind: str) -> None:
    """The bytes returned are the model that was measured: re-scoring them gives the figures."""
    features, target = load_wine(return_X_y=True, as_frame=True)
    model = CLASSIFIERS[kind](features, target, 20)

    result = convert(model, features)

    onnx.checker.check_model(onnx.load_from_string(result.onnx), full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # tree sums are split across threads otherwise
    session = ort.InferenceSession(result.onnx, options, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(
        ["label", "probabilities"], {"input": features.to_numpy(np.float32)}
    )
    native = model.predict_proba(features.astype(np.float32).astype(np.float64))
    assert np.abs(probabilities - native).max() == pytest.approx(result.fidelity.max_abs_diff)
    assert (labels == model.predict(features.astype(np.float32).astype(np.float64))).all()


def test_scaler_before_tree_in_float32_is_refused_and_auto_chooses_float64() -> None:
    """A scaler computes in FP32 in an FP32 graph and in float64 natively.

    On iris a forest after a StandardScaler has thresholds between adjacent FP32 values;
    three rows land one FP32 step apart on either side. Forced to FP32 the conversion is
    refused, the error names the figures and the reason; the override writes it and records
    the mismatch. ``auto`` sees the native answers move with FP32 inputs (the petal columns)
    and writes a double graph (scaler in double, the forest on FP32 as scikit-learn's own)
    that agrees.
    """
    features, target = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0))
    model.fit(features, target)

    auto = convert(model, features)
    assert auto.fidelity.within_tolerance, auto.fidelity.summary()
    assert auto.fidelity.precision == "float64"
    assert auto.fidelity.precision_reason.startswith("FP32 inputs change the native answers")
    assert auto.fidelity.precision_sensitive_features == ("petal length (cm)", "petal width (cm)")
    assert auto.signature.inputs[0].datatype == "FP64"
    with pytest.raises(FidelityError, match="transformers compute in FP32") as caught:
        convert(model, features, precision="float32")

    report = caught.value.report
    assert not report.within_tolerance
    assert report.disagreeing_rows == (50, 70, 83, 119, 126, 129, 138)
    assert report.label_agreement == 1.0
    assert report.input_max_abs_diff == pytest.approx(0.05)
    assert report.graph_max_abs_diff == pytest.approx(0.15)
    assert "max |Δ probabilities| 0.1" in str(caught.value)
    overridden = convert(model, features, allow_mismatch=True, precision="float32")
    assert overridden.metadata["modelyard.fidelity.override"] == "true"
    assert overridden.metadata["modelyard.fidelity.within_tolerance"] == "false"
