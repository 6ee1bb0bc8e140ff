"""Shapes of performance tracking: how to read a model's answers, and the metric series."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec


class PerformanceSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """How a model's records and outcomes become metrics (defaults follow
    docs/model-conventions.md: ``probabilities`` ``[p0, p1]`` and ``prediction``).

    Attributes:
        task: ``classification`` (binary: accuracy, AUC, F1, log loss) or ``regression``
            (RMSE, MAE).
        positive_label: the outcome label of the positive class (compared as text;
            ``true``/``false`` outcomes count as ``1``/``0``).
        score_output, score_index: the output holding the positive-class score, and its
            column when the output is a list.
        prediction_output: the regression output.
        threshold: a metric is degraded when worse than its baseline by more than this share
            of the baseline.
        min_samples: windows with fewer labelled rows are not judged.
    """

    task: Literal["classification", "regression"] = "classification"
    positive_label: str = "1"
    score_output: str = "probabilities"
    score_index: Annotated[int, msgspec.Meta(ge=0)] = 1
    prediction_output: str = "prediction"
    threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.05
    min_samples: Annotated[int, msgspec.Meta(ge=1)] = 30


class TrackRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A window to track: ``since``/``until`` (UTC), or the last ``window_s`` seconds."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    window_s: Annotated[float, msgspec.Meta(gt=0, le=90 * 86400)] | None = None


class MetricPoint(msgspec.Struct, kw_only=True, frozen=True):
    """One metric of one version over one window."""

    model: str
    version: int
    window_start: dt.datetime
    window_end: dt.datetime
    metric: str
    value: float
    n: int
    """Labelled rows the value was computed from."""


class PerformanceResult(msgspec.Struct, kw_only=True, frozen=True):
    """One tracked window: its metrics, the baselines, and the alert if it degraded."""

    model: str
    version: int
    window_start: dt.datetime
    window_end: dt.datetime
    n: int
    unlabelled: int
    metrics: dict[str, float]
    baseline: dict[str, float]
    degraded: list[str]
    alert_id: int | None = None


__all__ = ["MetricPoint", "PerformanceResult", "PerformanceSpec", "TrackRequest"]
