"""Small, seeded instances of every supported kind, shared by the converter tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

Fit = Callable[[pd.DataFrame, Any, int], Any]
"""(features, target, size) -> a fitted model; ``size`` scales trees/iterations."""


def _lgbm_booster(features: pd.DataFrame, target: Any, size: int, *, classify: bool) -> Any:
    cls = lgb.LGBMClassifier if classify else lgb.LGBMRegressor
    model = cls(n_estimators=size, min_child_samples=2, n_jobs=1, verbose=-1)
    return model.fit(features, target).booster_


def _mixed(final: Any, *, scale: bool = True) -> Fit:
    """A ColumnTransformer pipeline over the numeric columns plus a string bucket column.

    Trees get no scaler: they do not need one, and an FP32 scaler before a tree can flip
    rows lying within one FP32 step of a split (see ``test_scaler_before_tree_...``).
    """

    def fit(features: pd.DataFrame, target: Any, size: int) -> Any:
        numeric = [c for c in features.columns if c != "bucket"]
        steps = [SimpleImputer(), StandardScaler()] if scale else [SimpleImputer()]
        prep = ColumnTransformer(
            [
                ("num", make_pipeline(*steps), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["bucket"]),
            ]
        )
        return Pipeline([("prep", prep), ("model", final)]).fit(features, target)

    return fit


CLASSIFIERS: dict[str, Fit] = {
    "LogisticRegression": lambda x, y, n: LogisticRegression(
        solver="newton-cholesky", max_iter=1_000
    ).fit(x, y),
    "RandomForestClassifier": lambda x, y, n: RandomForestClassifier(
        n_estimators=n, random_state=0
    ).fit(x, y),
    "GradientBoostingClassifier": lambda x, y, n: GradientBoostingClassifier(
        n_estimators=n, random_state=0
    ).fit(x, y),
    "HistGradientBoostingClassifier": lambda x, y, n: HistGradientBoostingClassifier(
        max_iter=n, random_state=0
    ).fit(x, y),
    "LGBMClassifier": lambda x, y, n: lgb.LGBMClassifier(
        n_estimators=n, min_child_samples=2, n_jobs=1, verbose=-1
    ).fit(x, y),
    "lightgbm.Booster(classification)": lambda x, y, n: _lgbm_booster(x, y, n, classify=True),
    "XGBClassifier": lambda x, y, n: xgb.XGBClassifier(
        n_estimators=n, n_jobs=1, random_state=0
    ).fit(x, y),
    "Pipeline(StandardScaler, LogisticRegression)": lambda x, y, n: make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=5_000)
    ).fit(x, y),
    "Pipeline(ColumnTransformer, LogisticRegression)": _mixed(LogisticRegression(max_iter=5_000)),
    "Pipeline(ColumnTransformer, RandomForestClassifier)": _mixed(
        RandomForestClassifier(n_estimators=10, random_state=0), scale=False
    ),
    "Pipeline(ColumnTransformer, HistGradientBoostingClassifier)": _mixed(
        HistGradientBoostingClassifier(max_iter=10, random_state=0), scale=False
    ),
}
REGRESSORS: dict[str, Fit] = {
    "LinearRegression": lambda x, y, n: LinearRegression().fit(x, y),
    "Ridge": lambda x, y, n: Ridge().fit(x, y),
    "RandomForestRegressor": lambda x, y, n: RandomForestRegressor(
        n_estimators=n, random_state=0
    ).fit(x, y),
    "GradientBoostingRegressor": lambda x, y, n: GradientBoostingRegressor(
        n_estimators=n, random_state=0
    ).fit(x, y),
    "HistGradientBoostingRegressor": lambda x, y, n: HistGradientBoostingRegressor(
        max_iter=n, random_state=0
    ).fit(x, y),
    "LGBMRegressor": lambda x, y, n: lgb.LGBMRegressor(
        n_estimators=n, min_child_samples=2, n_jobs=1, verbose=-1
    ).fit(x, y),
    "lightgbm.Booster(regression)": lambda x, y, n: _lgbm_booster(x, y, n, classify=False),
    "XGBRegressor": lambda x, y, n: xgb.XGBRegressor(n_estimators=n, n_jobs=1, random_state=0).fit(
        x, y
    ),
    "Pipeline(ColumnTransformer, Ridge)": _mixed(Ridge()),
}


def needs_bucket(kind: str) -> bool:
    """Whether the kind's fit expects the extra string column ``bucket``."""
    return "ColumnTransformer" in kind


def with_bucket(features: pd.DataFrame) -> pd.DataFrame:
    """The features plus a string column cutting the first one into three buckets."""
    first = features.iloc[:, 0].to_numpy()
    edges = np.quantile(first, [1 / 3, 2 / 3])
    names = np.array(["low", "mid", "high"], dtype=object)
    return features.assign(bucket=names[np.searchsorted(edges, first)])
