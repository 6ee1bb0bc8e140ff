"""Retraining test material: real data, real models converted to ONNX, a Production version.

The data is a seeded ``make_classification`` table (columns ``f0``..``f5``, label ``churned``)
written as Parquet. *Strong* models learn it; *weak* models are trained on shuffled labels
(AUC near 0.5). A test registers one as the Production version (card approved by a second
principal), points a retraining spec at the data, and lets a real worker process retrain.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.datasets import make_classification

from control_plane.app import ControlPlaneServices
from control_plane.registry.models import ReviewDecision
from control_plane.retraining.models import RetrainingRun, RetrainingSpec
from control_plane.security.models import Principal
from converters import convert
from modelyard.enums import ModelStage, Role
from modelyard.errors import AlreadyExists
from modelyard.models import DatasetRef, FeatureRef, ModelLineage
from tests.control_plane.features.strategies import sample_definition
from tests.control_plane.registry.helpers import card

DEVELOPER = Principal(name="dev", role=Role.DEVELOPER, token_id="t-dev")
APPROVER = Principal(name="ann", role=Role.APPROVER, token_id="t-ann")
FEATURES = tuple(f"f{i}" for i in range(6))
TARGET = "churned"


def churn_table(seed: int, rows: int = 1200) -> pd.DataFrame:
    """A seeded binary classification table with a real signal."""
    x, y = make_classification(
        n_samples=rows, n_features=len(FEATURES), n_informative=4, random_state=seed
    )
    frame = pd.DataFrame(x, columns=list(FEATURES))
    frame[TARGET] = y
    return frame


def strong_model(frame: pd.DataFrame) -> LGBMClassifier:
    """A model that learned the table."""
    model = LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1, n_jobs=1)
    return model.fit(frame[list(FEATURES)], frame[TARGET])


def weak_model(frame: pd.DataFrame, seed: int = 0) -> LGBMClassifier:
    """A model trained on shuffled labels: no better than chance."""
    shuffled = np.random.default_rng(seed).permutation(frame[TARGET].to_numpy())
    model = LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1)
    return model.fit(frame[list(FEATURES)], shuffled)


def train_on_shuffled_labels(features: pd.DataFrame, labels: Any, params: Any) -> Any:
    """A retraining trainer entry point that produces a worse model (for property 30)."""
    shuffled = np.random.default_rng(1).permutation(np.asarray(labels))
    model = LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1)
    return model.fit(features, shuffled)


def train_and_raise(features: pd.DataFrame, labels: Any, params: Any) -> Any:
    """A trainer entry point that fails (failure injection)."""
    raise RuntimeError("injected training failure")


async def production_version(
    services: ControlPlaneServices, name: str, model: Any, frame: pd.DataFrame
) -> int:
    """Register ``model`` as ``name``, approve its card (second principal), promote it."""
    for feature in FEATURES:
        # An earlier example of the same test may have created it.
        with contextlib.suppress(AlreadyExists):
            await services.feature_service.create_feature(sample_definition(feature), actor="admin")
    conversion = convert(model, frame[list(FEATURES)].head(300))
    lineage = ModelLineage(
        mlflow_run_id="initial",
        training_dataset=DatasetRef(uri="file:///initial.parquet", sha256="cd" * 32),
        features=tuple(FeatureRef(name=f, version=1) for f in FEATURES),
        code_version="0123456789abcdef0123456789abcdef01234567",
    )
    registry = services.registry
    registered = await registry.register_conversion(name, conversion, card(), lineage, DEVELOPER)
    version = registered.version
    await registry.stages.transition(name, version, ModelStage.STAGING, DEVELOPER)
    await registry.cards.submit(name, version, DEVELOPER)
    await registry.cards.review(name, version, ReviewDecision.APPROVED, APPROVER)
    await registry.stages.transition(name, version, ModelStage.PRODUCTION, APPROVER)
    return version


def spec_for(data: Path, **overrides: Any) -> RetrainingSpec:
    """A spec over the Parquet file ``data`` (LightGBM, AUC, no margin unless overridden)."""
    values: dict[str, Any] = {"data": str(data), "target": TARGET, "trainer": "lightgbm"}
    values |= {"params": {"n_estimators": 60, "num_leaves": 15}}
    return RetrainingSpec(**(values | overrides))


def step_names(run: RetrainingRun) -> list[str]:
    """The names of the run's recorded steps, in order."""
    return [step.name for step in run.steps]
