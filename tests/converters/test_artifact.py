"""The artifact itself: checker, determinism, metadata, signature, overrides."""

from __future__ import annotations

import hashlib
import json

import msgspec
import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from converters import FidelityError, Tolerances, convert
from converters.graph import CONTENT_HASH_KEY
from tests.converters.kinds import CLASSIFIERS, REGRESSORS, with_bucket


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    features, target = load_wine(return_X_y=True, as_frame=True)
    return features, target


@pytest.mark.parametrize(
    "kind",
    ["LGBMClassifier", "XGBClassifier", "HistGradientBoostingClassifier",
     "Pipeline(ColumnTransformer, LogisticRegression)"],
)  # fmt: skip
def test_converting_twice_gives_identical_bytes(
    kind: str, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = wine
    features = with_bucket(features) if "ColumnTransformer" in kind else features
    model = CLASSIFIERS[kind](features, target, 15)

    first = convert(model, features)
    second = convert(model, features)

    assert first.onnx == second.onnx
    assert first.sha256 == second.sha256 == hashlib.sha256(first.onnx).hexdigest()


def test_metadata_names_framework_features_task_classes_and_fidelity(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, target = wine
    model = CLASSIFIERS["LGBMClassifier"](features, target, 10)

    result = convert(model, features)

    loaded = onnx.load_from_string(result.onnx)
    onnx.checker.check_model(loaded, full_check=True)
    props = {p.key: p.value for p in loaded.metadata_props}
    assert props == result.metadata
    assert props["modelyard.task"] == "classification"
    assert props["modelyard.source_framework"] == "lightgbm"
    assert props["modelyard.source_framework_version"]
    assert props["modelyard.source_kind"] == "LGBMClassifier"
    assert json.loads(props["modelyard.feature_names"]) == list(features.columns)
    assert json.loads(props["modelyard.feature_types"]) == ["FP32"] * features.shape[1]
    assert json.loads(props["modelyard.class_labels"]) == [0, 1, 2]
    fidelity = json.loads(props["modelyard.fidelity"])
    assert fidelity["max_abs_diff"] == result.fidelity.max_abs_diff
    assert fidelity["label_agreement"] == 1.0
    assert props["modelyard.fidelity.override"] == "false"


def test_content_hash_covers_the_model_without_itself(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    result = convert(CLASSIFIERS["RandomForestClassifier"](features, target, 5), features)

    loaded = onnx.load_from_string(result.onnx)
    kept = [p for p in loaded.metadata_props if p.key != CONTENT_HASH_KEY]
    del loaded.metadata_props[:]
    loaded.metadata_props.extend(kept)
    digest = hashlib.sha256(loaded.SerializeToString(deterministic=True)).hexdigest()

    assert result.metadata[CONTENT_HASH_KEY] == f"sha256:{digest}"


def test_mixed_pipeline_takes_one_input_per_column() -> None:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    features = with_bucket(features.iloc[:, :4])
    features["count"] = np.arange(len(features)) % 5
    model = CLASSIFIERS["Pipeline(ColumnTransformer, LogisticRegression)"](features, target, 5)
    sample = features.copy()
    sample.loc[:9, "bucket"] = "never seen"  # OneHotEncoder(handle_unknown="ignore")

    result = convert(model, sample)

    inputs = {(i.name, i.datatype, i.shape) for i in result.signature.inputs}
    assert ("mean radius", "FP32", (-1, 1)) in inputs
    assert ("bucket", "BYTES", (-1, 1)) in inputs
    assert ("count", "INT64", (-1, 1)) in inputs
    assert result.metadata["modelyard.input_layout"] == "per_column"
    assert result.fidelity.within_tolerance


def test_no_zipmap_and_plain_probability_tensor(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    for kind in ("LogisticRegression", "LGBMClassifier", "XGBClassifier"):
        result = convert(CLASSIFIERS[kind](features, target, 5), features)
        graph = onnx.load_from_string(result.onnx).graph
        assert "ZipMap" not in {n.op_type for n in graph.node}
        assert [o.name for o in graph.output] == ["label", "probabilities"]


def test_regressor_output_is_a_column(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    result = convert(REGRESSORS["XGBRegressor"](features, target.astype(float), 5), features)

    assert result.signature.outputs[0].shape == (-1, 1)
    assert result.metadata["modelyard.task"] == "regression"
    assert "modelyard.class_labels" not in result.metadata


def test_tight_tolerance_refuses_with_figures_and_override_is_recorded(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, target = wine
    model = CLASSIFIERS["LGBMClassifier"](features, target, 20)
    strict = Tolerances(probability_atol=0.0)

    with pytest.raises(FidelityError) as caught:
        convert(model, features, tolerances=strict)

    message = str(caught.value)
    assert "max |Δ probabilities|" in message
    assert "probabilities within 0" in message
    assert caught.value.code.value == "failed_precondition"
    result = convert(model, features, tolerances=strict, allow_mismatch=True)
    assert result.metadata["modelyard.fidelity.override"] == "true"
    fidelity = msgspec.json.decode(result.metadata["modelyard.fidelity"])
    assert fidelity["within_tolerance"] is False
    assert fidelity["tolerances"]["probability_atol"] == 0.0


def test_column_transformer_with_passthrough_remainder(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    features, target = wine
    features = with_bucket(features)
    prep = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["bucket"])], remainder="passthrough"
    )
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    model = Pipeline([("prep", prep), ("model", forest)]).fit(features, target)

    result = convert(model, features)

    assert result.fidelity.within_tolerance, result.fidelity.summary()
    assert len(result.signature.inputs) == features.shape[1]
