"""NaN in the sample: tree kinds that take missing values send them where they natively go."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression

from converters import convert
from tests.converters.kinds import CLASSIFIERS, REGRESSORS


def _with_holes(features: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    holed = np.where(rng.random(features.shape) < 0.15, np.nan, features)
    return pd.DataFrame(holed, columns=[f"x{i}" for i in range(features.shape[1])])


@pytest.mark.parametrize(
    "kind",
    ["RandomForestClassifier", "HistGradientBoostingClassifier", "LGBMClassifier",
     "lightgbm.Booster(classification)", "XGBClassifier"],
)  # fmt: skip
def test_classifiers_trained_with_missing_values_agree(kind: str) -> None:
    features, target = make_classification(n_samples=600, n_features=6, random_state=0)
    frame = _with_holes(features)
    model = CLASSIFIERS[kind](frame, target, 30)

    report = convert(model, frame).fidelity

    assert report.within_tolerance, report.summary()
    assert report.label_agreement == 1.0


@pytest.mark.parametrize(
    "kind",
    ["RandomForestRegressor", "HistGradientBoostingRegressor", "LGBMRegressor", "XGBRegressor"],
)
def test_regressors_trained_with_missing_values_agree(kind: str) -> None:
    features, target = make_regression(n_samples=600, n_features=6, noise=3.0, random_state=0)
    frame = _with_holes(features)
    model = REGRESSORS[kind](frame, target, 30)

    assert convert(model, frame).fidelity.within_tolerance


def test_forest_trained_without_missing_values_scores_nan_like_scikit_learn() -> None:
    """scikit-learn sends NaN to the larger child when no NaN was seen in training."""
    features, target = make_classification(n_samples=600, n_features=6, random_state=1)
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(6)])
    model = CLASSIFIERS["RandomForestClassifier"](frame, target, 20)

    report = convert(model, _with_holes(features)).fidelity

    assert report.within_tolerance, report.summary()
