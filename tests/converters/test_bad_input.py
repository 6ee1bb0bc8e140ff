"""Bad input: clear domain errors naming the problem, never a traceback from a library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures

from converters import UnsupportedModel, convert
from converters.kinds import ConversionFailed
from converters.loading import load_model, load_sample
from modelyard.errors import InvalidArgument, NotFound
from tests.converters.kinds import CLASSIFIERS, with_bucket


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    features, target = load_wine(return_X_y=True, as_frame=True)
    return features, target


@pytest.mark.parametrize(
    "model",
    [KMeans(n_clusters=2, n_init=1), {"not": "a model"}, "text"],
    ids=["kmeans", "dict", "str"],
)
def test_unsupported_model_lists_the_supported_kinds(
    model: Any, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, _ = wine
    if isinstance(model, KMeans):
        model.fit(features)

    with pytest.raises(UnsupportedModel) as caught:
        convert(model, features)

    message = str(caught.value)
    assert "supported kinds are" in message
    for kind in ("LogisticRegression", "LGBMClassifier", "XGBRegressor", "Booster"):
        assert kind in message


def test_unsupported_pipeline_step_is_named(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    model = make_pipeline(PolynomialFeatures(), RandomForestClassifier(n_estimators=2))
    model.fit(features, target)

    with pytest.raises(UnsupportedModel, match="PolynomialFeatures"):
        convert(model, features)


def test_unfitted_model_is_refused(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    with pytest.raises(InvalidArgument, match="not fitted"):
        convert(RandomForestClassifier(), wine[0])


def test_missing_and_extra_columns_are_named(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    model = CLASSIFIERS["XGBClassifier"](features, target, 3)
    sample = features.drop(columns=["alcohol", "hue"]).assign(colour="red", spare=1.0)

    with pytest.raises(InvalidArgument) as caught:
        convert(model, sample)

    message = str(caught.value)
    assert "missing columns ['alcohol', 'hue']" in message
    assert "extra columns ['colour', 'spare']" in message


def test_wrong_width_array_is_refused(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    model = CLASSIFIERS["LGBMClassifier"](features.to_numpy(), target, 3)

    with pytest.raises(InvalidArgument, match="3 columns, the model expects 13"):
        convert(model, features.to_numpy()[:, :3])


def test_empty_and_non_numeric_samples_are_refused(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, target = wine
    model = CLASSIFIERS["RandomForestClassifier"](features, target, 3)

    with pytest.raises(InvalidArgument, match="no rows"):
        convert(model, features.iloc[:0])
    with pytest.raises(InvalidArgument, match=r"columns \['hue'\] are not"):
        convert(model, features.assign(hue="x"))


def test_corrupt_model_files_are_reported_as_such(tmp_path: Path) -> None:
    cases = {
        "model.joblib": b"\x80\x04 this is not a pickle",
        "model.txt": b"tree\nversion=v4\nnonsense",
        "model.json": b'{"learner": 42',
        "model.ubj": b"{\x00\x01garbage",
        "model.bin": b"\x00\x01\x02",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InvalidArgument, match=name) as caught:
            load_model(path)
        assert "Traceback" not in str(caught.value)


def test_a_pickled_non_model_is_unsupported(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    path = tmp_path / "numbers.pkl"
    joblib.dump(np.arange(3), path)

    with pytest.raises(UnsupportedModel, match=r"numpy\.ndarray"):
        convert(load_model(path), wine[0])


def test_missing_files_are_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="model file"):
        load_model(tmp_path / "absent.joblib")
    with pytest.raises(NotFound, match="sample file"):
        load_sample(tmp_path / "absent.csv")


def test_bad_sample_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "rows.xlsx").write_bytes(b"")
    (tmp_path / "rows.parquet").write_bytes(b"not parquet")
    (tmp_path / "rows.csv").write_bytes(b"")

    with pytest.raises(InvalidArgument, match=r"expected a \.csv or \.parquet"):
        load_sample(tmp_path / "rows.xlsx")
    with pytest.raises(InvalidArgument, match="not readable"):
        load_sample(tmp_path / "rows.parquet")
    with pytest.raises(InvalidArgument, match="not readable"):
        load_sample(tmp_path / "rows.csv")


def test_string_column_with_missing_values_is_refused() -> None:
    features, target = load_wine(return_X_y=True, as_frame=True)
    features = with_bucket(features)
    model = CLASSIFIERS["Pipeline(ColumnTransformer, LogisticRegression)"](features, target, 3)
    sample = features.copy()
    sample.loc[3, "bucket"] = None

    with pytest.raises(InvalidArgument, match="'bucket' has missing values"):
        convert(model, sample)


def test_converter_failure_is_a_domain_error_naming_the_converter(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, target = wine
    features = with_bucket(features)
    prep = ColumnTransformer(
        [
            (
                "cat",
                OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=70),
                ["bucket"],
            )
        ],
        remainder="passthrough",
    )
    final = LogisticRegression(solver="newton-cholesky")
    model = Pipeline([("prep", prep), ("model", final)]).fit(features, target)

    with pytest.raises(ConversionFailed, match=r"skl2onnx .* could not convert .*Infrequent"):
        convert(model, features)


def test_native_model_refusing_the_sample_is_invalid_argument(
    wine: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, target = wine
    model = CLASSIFIERS["GradientBoostingClassifier"](features, target, 3)

    with pytest.raises(InvalidArgument, match="cannot score the sample: Input X contains NaN"):
        convert(model, features.assign(alcohol=np.nan))


def test_multi_output_regressor_is_unsupported(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    from sklearn.linear_model import LinearRegression

    features, target = wine
    model = LinearRegression().fit(features, np.column_stack([target, target]))

    with pytest.raises(UnsupportedModel, match="multi-output LinearRegression"):
        convert(model, features)


@pytest.mark.parametrize(
    "model",
    [
        lambda: __import__("lightgbm").LGBMClassifier(
            n_estimators=3, objective="multiclassova", n_jobs=1, verbose=-1
        ),
        lambda: __import__("xgboost").XGBClassifier(n_estimators=3, objective="multi:softmax"),
    ],
    ids=["lightgbm-multiclassova", "xgboost-softmax"],
)
def test_objectives_the_converters_get_wrong_are_refused_up_front(
    model: Any, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = wine
    fitted = model().fit(features, target)

    with pytest.raises(UnsupportedModel, match="objective"):
        convert(fitted, features)
