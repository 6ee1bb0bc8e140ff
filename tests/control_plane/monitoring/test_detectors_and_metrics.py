"""Golden seeded streams for the streaming detectors; performance metrics against hand
computations; the degradation rule in both directions."""

from __future__ import annotations

import math
import random

import pytest

from control_plane.monitoring.detectors import (
    DEFAULT_DETECTORS,
    DetectorKind,
    DetectorSpec,
    StreamMonitor,
    make_detector,
)
from control_plane.monitoring.performance import (
    classification_metrics,
    degradation,
    regression_metrics,
)
from modelyard.errors import InvalidArgument


def _stream(seed: int, change: int, before: float, after: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(before if i < change else after, 0.05) for i in range(n)]


def test_a_mean_shift_is_detected_by_every_detector_soon_after_the_change() -> None:
    values = _stream(seed=3, change=1000, before=0.3, after=0.5, n=1600)
    hits = StreamMonitor("score", DEFAULT_DETECTORS, seed=3).update(values)
    first = {d: min(h.index for h in hits if h.detector == d) for d in {h.detector for h in hits}}
    assert set(first) == {"adwin", "page_hinkley", "kswin"}
    assert all(1000 <= index < 1150 for index in first.values()), first
    assert all(h.stream == "score" for h in hits)


def test_feeding_in_pieces_equals_feeding_at_once() -> None:
    values = _stream(seed=9, change=700, before=0.2, after=0.4, n=1200)
    whole = StreamMonitor("s", DEFAULT_DETECTORS, seed=9).update(values)
    pieces = StreamMonitor("s", DEFAULT_DETECTORS, seed=9)
    chunked = [hit for i in range(0, 1200, 97) for hit in pieces.update(values[i : i + 97])]
    assert chunked == whole
    assert pieces.position == 1200


def test_a_stationary_stream_raises_no_alarm() -> None:
    values = _stream(seed=4, change=10**9, before=0.3, after=0.3, n=3000)
    assert StreamMonitor("s", DEFAULT_DETECTORS, seed=4).update(values) == []


def test_unknown_detector_parameters_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="adwin"):
        make_detector(DetectorSpec(kind=DetectorKind.ADWIN, params={"nonsense": 1.0}))


def test_classification_metrics_match_hand_computation() -> None:
    labels, scores = [1, 0, 1, 1], [0.9, 0.4, 0.2, 0.7]
    m = classification_metrics(labels, scores)
    assert m["accuracy"] == 0.75
    assert m["f1"] == pytest.approx(0.8)  # precision 1, recall 2/3
    expected = -sum(math.log(p if y else 1 - p) for y, p in zip(labels, scores, strict=True)) / 4
    assert m["log_loss"] == pytest.approx(expected)
    assert m["auc"] == pytest.approx(2 / 3)
    assert "auc" not in classification_metrics([1, 1], [0.9, 0.8])  # undefined on one class


def test_regression_metrics() -> None:
    m = regression_metrics([0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 3.0, -3.0])
    assert m == {"mae": 2.0, "rmse": math.sqrt(5.0)}


@pytest.mark.parametrize(
    ("metric", "value", "baseline", "flagged"),
    [
        ("accuracy", 0.84, 0.90, True),  # 6.7 % below
        ("accuracy", 0.87, 0.90, False),  # 3.3 % below
        ("auc", 0.95, 0.90, False),  # better
        ("log_loss", 0.50, 0.40, True),  # 25 % higher
        ("rmse", 0.99, 1.0, False),
        ("mae", 1.2, 1.0, True),
    ],
)
def test_degradation_rule(metric: str, value: float, baseline: float, flagged: bool) -> None:
    detail = degradation(metric, value, baseline=baseline, threshold=0.05)
    assert detail.flagged is flagged
    assert detail.baseline == baseline
    assert detail.threshold == 0.05
