"""Drift statistics from reference profiles and mergeable sketches (contract 5).

Pure functions, no I/O: :mod:`~control_plane.drift.statistics` (KS, chi-square, z-test,
normed Wasserstein, Jensen-Shannon, PSI on binned counts, computed as Evidently 0.7 does),
:mod:`~control_plane.drift.projection` (bringing a sketch and a profile onto common bins) and
:mod:`~control_plane.drift.policy` (Evidently 0.7's default method choice and thresholds,
per-feature overrides, the dataset verdict). The shapes are in
:mod:`~control_plane.drift.models`. Monitoring (issue 18) builds its reports on
:func:`dataset_drift`. See docs/drift.md.
"""

from __future__ import annotations

from control_plane.drift.models import (
    DatasetDriftResult,
    DriftMethod,
    DriftPolicy,
    FeatureDriftResult,
    FeaturePolicy,
)
from control_plane.drift.policy import SCORE, dataset_drift, default_method, feature_drift

__all__ = [
    "SCORE",
    "DatasetDriftResult",
    "DriftMethod",
    "DriftPolicy",
    "FeatureDriftResult",
    "FeaturePolicy",
    "dataset_drift",
    "default_method",
    "feature_drift",
]
