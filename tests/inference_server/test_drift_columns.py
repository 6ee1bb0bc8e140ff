"""Which columns a version's sketches cover, for each model shape the converters produce."""

from __future__ import annotations

import numpy as np

from inference_server.drift.columns import feature_columns, score_column
from modelyard.models import ModelSignature, TensorSpec


def _spec(name: str, datatype: str, shape: tuple[int, ...]) -> TensorSpec:
    return TensorSpec(name=name, datatype=datatype, shape=shape)


def test_named_inputs_are_features_and_wide_ones_are_split() -> None:
    sig = ModelSignature(
        inputs=(
            _spec("age", "FP32", (-1, 1)),
            _spec("city", "BYTES", (-1, 1)),
            _spec("v", "FP64", (-1, 2)),
        ),
        outputs=(),
    )
    arrays = [
        np.array([[30.0], [40.0]], np.float32),
        np.array([["oslo"], ["lima"]], dtype=object),
        np.array([[1.0, 2.0], [3.0, 4.0]]),
    ]
    columns = feature_columns(sig, arrays)
    assert list(columns) == ["age", "city", "v[0]", "v[1]"]
    assert columns["city"].tolist() == ["oslo", "lima"]
    assert columns["v[1]"].tolist() == [2.0, 4.0]


def test_a_matrix_without_feature_names_gets_column_numbers() -> None:
    sig = ModelSignature(inputs=(_spec("input", "FP32", (-1, 3)),), outputs=())
    assert list(feature_columns(sig, [np.zeros((2, 3), np.float32)])) == ["0", "1", "2"]


def test_the_score_is_the_positive_probability_the_multiclass_label_or_the_prediction() -> None:
    outputs_sig = (_spec("label", "INT64", (-1,)), _spec("probabilities", "FP32", (-1, 2)))
    sig = ModelSignature(inputs=(), outputs=outputs_sig)
    binary = [np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)]
    binary_score = score_column(sig, "classification", binary)
    assert binary_score is not None
    assert binary_score.tolist() == [
        np.float32(0.8),
        np.float32(0.1),
    ]
    multi_sig = ModelSignature(
        inputs=(), outputs=(_spec("label", "INT64", (-1,)), _spec("probabilities", "FP32", (-1, 3)))
    )
    multi = [np.array([2, 0]), np.full((2, 3), 1 / 3, np.float32)]
    multi_score = score_column(multi_sig, "classification", multi)
    assert multi_score is not None
    assert multi_score.tolist() == [2, 0]
    reg = ModelSignature(inputs=(), outputs=(_spec("variable", "FP32", (-1, 1)),))
    reg_score = score_column(reg, "", [np.array([[1.5], [2.5]], np.float32)])
    assert reg_score is not None
    assert reg_score.tolist() == [1.5, 2.5]
