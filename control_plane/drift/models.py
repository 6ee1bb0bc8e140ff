"""Shapes of the drift statistics: methods, per-feature policy and verdicts."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import msgspec

from modelyard.models import InputValue


class DriftMethod(enum.Enum):
    """A drift test, named as in Evidently 0.7 (``stattest`` names)."""

    KS = "ks"
    CHI_SQUARE = "chisquare"
    Z = "z"
    WASSERSTEIN = "wasserstein"
    JENSEN_SHANNON = "jensenshannon"
    PSI = "psi"

    @property
    def is_p_value(self) -> bool:
        """Whether the method's score is a p-value (drift below the threshold)."""
        return self in (DriftMethod.KS, DriftMethod.CHI_SQUARE, DriftMethod.Z)

    @property
    def default_threshold(self) -> float:
        """Evidently's default threshold: 0.05 for p-values, 0.1 for distances and PSI."""
        return 0.05 if self.is_p_value else 0.1


Threshold = Annotated[float, msgspec.Meta(gt=0.0, le=sys.float_info.max)]


class FeaturePolicy(InputValue, kw_only=True, frozen=True):
    """Overrides for one feature; ``None`` keeps the default (Evidently's choice)."""

    method: DriftMethod | None = None
    threshold: Threshold | None = None


class DriftPolicy(InputValue, kw_only=True, frozen=True):
    """How a window is judged.

    Attributes:
        method, threshold: for every feature without its own entry (``None``: Evidently's
            default method for the feature and that method's default threshold).
        features: feature name (or ``"score"`` for the prediction score) -> overrides.
        drift_share: the dataset drifts when at least this share of the input features
            drifted (Evidently's ``drift_share``).
    """

    method: DriftMethod | None = None
    threshold: Threshold | None = None
    features: dict[str, FeaturePolicy] = {}
    drift_share: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.5


class FeatureDriftResult(msgspec.Struct, kw_only=True, frozen=True):
    """The verdict on one feature (or the prediction score).

    Attributes:
        feature: its name (``"score"`` for the prediction score).
        kind: ``numeric`` or ``categorical``.
        method: the test applied.
        statistic: the test statistic (KS D, chi-square, z) or the distance itself.
        score: what is compared with the threshold (Evidently's drift score): the p-value
            for KS/chi-square/z, the distance for the others; ``None`` without current data.
        threshold: the threshold applied.
        drifted: KS: ``p <= threshold``; chi-square and z: ``p < threshold``; distances:
            ``distance >= threshold`` (each as in Evidently).
        reference_size, current_size: non-missing values compared.
        current_missing: missing values in the current window (left out, as Evidently does).
    """

    feature: str
    kind: str
    method: DriftMethod
    statistic: float | None
    score: float | None
    threshold: float
    drifted: bool
    reference_size: int
    current_size: int
    current_missing: int = 0


class DatasetDriftResult(msgspec.Struct, kw_only=True, frozen=True):
    """The verdict on a window: per feature, the score, and dataset drift.

    Attributes:
        features: one result per input feature of the reference.
        score: the prediction score's result (not counted in the share), if any.
        drifted_features: input features that drifted.
        share: drifted features over features with current data.
        drift_share: the share at which the dataset drifts.
        drifted: ``share >= drift_share`` (Evidently's rule).
    """

    features: list[FeatureDriftResult]
    score: FeatureDriftResult | None
    drifted_features: int
    share: float
    drift_share: float
    drifted: bool
