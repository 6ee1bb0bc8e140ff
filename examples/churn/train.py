"""How the churn example splits its data and trains and scores a candidate model.

Three baselines — LogisticRegression (with scaling), LightGBM and XGBoost, built by the tuner's
``build_estimator`` so baselines and tuned models are the same estimators — share one split and
one metric (validation ROC AUC), so the pipeline can pick the best fairly.

>>> from modelyard.datasets import generate_churn
>>> splits = split(generate_churn(600, seed=3), seed=3)
>>> model, auc = fit_and_score("logistic_regression", {}, splits)
>>> 0.5 < auc <= 1.0
True
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from control_plane.tuning.estimators import build_estimator
from examples.churn.features import engineer
from modelyard.datasets import ChurnDataset


@dataclasses.dataclass(frozen=True)
class Splits:
    """Engineered features and labels, split into training and validation parts."""

    x_train: pd.DataFrame
    x_valid: pd.DataFrame
    y_train: np.ndarray
    y_valid: np.ndarray


def split(dataset: ChurnDataset, *, seed: int = 0, validation_share: float = 0.25) -> Splits:
    """Engineer the features of ``dataset`` and split them, stratified by the label."""
    features = engineer(dataset.frame)
    x_train, x_valid, y_train, y_valid = train_test_split(
        features,
        dataset.labels,
        test_size=validation_share,
        random_state=seed,
        stratify=dataset.labels,
    )
    return Splits(x_train, x_valid, np.asarray(y_train), np.asarray(y_valid))


CANDIDATES: tuple[str, ...] = ("logistic_regression", "lightgbm", "xgboost")
"""The model families the tuner knows; their estimators come from one place."""

BASELINE_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {},
    "lightgbm": {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31},
    "xgboost": {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 5},
}


def fit_and_score(name: str, params: dict[str, Any], splits: Splits) -> tuple[Any, float]:
    """Train candidate ``name`` with ``params``; return it and its validation ROC AUC."""
    model = build_estimator(name, params, seed=0)
    model.fit(splits.x_train, splits.y_train)
    scores = model.predict_proba(splits.x_valid)[:, 1]
    return model, float(roc_auc_score(splits.y_valid, scores))
