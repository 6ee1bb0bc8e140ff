"""Shapes of monitoring's drift checks: reference samples, check requests, stored reports."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from control_plane.drift import DatasetDriftResult

MAX_WINDOW_S = 90 * 86400.0


class _Input(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of shapes decoded from outside input: unknown fields are errors."""


class ReferenceSample(_Input, kw_only=True, frozen=True):
    """A version's training sample (columns of equal length), from which the reference profile
    is built; ``score`` is the model's prediction score on it (e.g. positive-class
    probability), optional."""

    columns: dict[str, list[Any]]
    score: list[float] | None = None


class DriftCheckRequest(_Input, kw_only=True, frozen=True):
    """A window to check: ``since``/``until`` (UTC), or the last ``window_s`` seconds."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    window_s: Annotated[float, msgspec.Meta(gt=0, le=MAX_WINDOW_S)] | None = None


class DriftReport(msgspec.Struct, kw_only=True, frozen=True):
    """One drift check of a model version over a window, as stored.

    Attributes:
        result: per feature the method, statistic, threshold, p-value or distance, verdict
            and sample sizes; the score's verdict; the dataset verdict.
        rows: served rows the merged sketches cover.
        alert_id: the alert the report opened or fed (``None`` when nothing drifted).
    """

    id: int
    model: str
    version: int
    window_start: dt.datetime
    window_end: dt.datetime
    created_at: dt.datetime
    drifted: bool
    share: float
    rows: int
    result: DatasetDriftResult
    alert_id: int | None = None


__all__ = ["MAX_WINDOW_S", "DriftCheckRequest", "DriftReport", "ReferenceSample"]
