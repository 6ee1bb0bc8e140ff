"""Streaming change detectors on a model's score and error streams (river).

Periodic drift checks compare whole windows; between them, river's detectors watch every
value as it arrives and alarm quickly: ADWIN (adaptive windowing, for changes of the mean),
Page-Hinkley (cumulative deviation from the running mean, for sustained shifts) and KSWIN
(Kolmogorov-Smirnov over a sliding window, for changes of the distribution's shape). Each
detector keeps its state between batches, so a stream may be fed in pieces of any size.
Detection delay and false-alarm rates on seeded streams are in ``benchmarks/RESULTS.md``.

>>> import random
>>> rng = random.Random(42)
>>> before = [rng.gauss(0.2, 0.05) for _ in range(500)]
>>> after = [rng.gauss(0.6, 0.05) for _ in range(200)]
>>> monitor = StreamMonitor("score", DEFAULT_DETECTORS, seed=42)
>>> monitor.update(before)
[]
>>> hits = monitor.update(after)
>>> sorted({(h.detector, h.index >= 500) for h in hits})
[('adwin', True), ('kswin', True), ('page_hinkley', True)]
>>> min(h.index for h in hits if h.detector == "adwin") - 500 < 50
True
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import msgspec
from river import drift

from modelyard.errors import InvalidArgument


class DetectorKind(enum.Enum):
    """The river detectors on offer."""

    ADWIN = "adwin"
    PAGE_HINKLEY = "page_hinkley"
    KSWIN = "kswin"


class DetectorSpec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A detector and its river parameters (e.g. ``{"delta": 0.002}`` for ADWIN)."""

    kind: DetectorKind
    params: dict[str, float] = msgspec.field(default_factory=dict)


DEFAULT_DETECTORS: tuple[DetectorSpec, ...] = (
    DetectorSpec(kind=DetectorKind.ADWIN),
    DetectorSpec(kind=DetectorKind.PAGE_HINKLEY, params={"threshold": 10.0}),
    DetectorSpec(
        kind=DetectorKind.KSWIN, params={"alpha": 0.0001, "window_size": 300, "stat_size": 100}
    ),
)
"""ADWIN at river's defaults; Page-Hinkley with threshold 10 (scores live in [0, 1], river's
default of 50 suits larger scales); KSWIN at alpha 1e-4 over a 300-value window comparing the
last 100 (river's alpha 0.005 with 100/30 alarms falsely every few thousand stationary values
and misses shape changes; see benchmarks/RESULTS.md)."""

_INT_PARAMS = {
    "clock",
    "max_buckets",
    "min_window_length",
    "grace_period",
    "min_instances",
    "window_size",
    "stat_size",
}


class Detection(msgspec.Struct, kw_only=True, frozen=True):
    """A detector fired at position ``index`` of ``stream`` (0-based, over the whole stream)."""

    detector: str
    stream: str
    index: int
    value: float


def make_detector(spec: DetectorSpec, seed: int | None = None) -> Any:
    """A fresh river detector for ``spec``.

    Raises:
        InvalidArgument: a parameter river does not know, or an invalid value.
    """
    params: dict[str, Any] = {k: int(v) if k in _INT_PARAMS else v for k, v in spec.params.items()}
    try:
        if spec.kind is DetectorKind.ADWIN:
            return drift.ADWIN(**params)  # type: ignore[no-untyped-call]
        if spec.kind is DetectorKind.PAGE_HINKLEY:
            return drift.PageHinkley(**params)
        return drift.KSWIN(**{"seed": seed, **params})
    except (TypeError, ValueError) as error:
        raise InvalidArgument(
            f"detector {spec.kind.value} parameters {spec.params}: {error}"
        ) from None


class StreamMonitor:
    """Every configured detector over one stream (e.g. a version's scores).

    Args:
        stream: the stream's name, copied onto detections.
        specs: the detectors to run.
        seed: KSWIN's sampling seed (reproducible alarms).
    """

    def __init__(self, stream: str, specs: Iterable[DetectorSpec], seed: int | None = None) -> None:
        self.stream = stream
        self._detectors = [(s.kind.value, make_detector(s, seed)) for s in specs]
        self.position = 0
        """How many values have been fed so far."""

    def update(self, values: Iterable[float]) -> list[Detection]:
        """Feed ``values`` in order; the detections they caused."""
        found = []
        for value in values:
            for name, detector in self._detectors:
                detector.update(value)
                if detector.drift_detected:
                    found.append(
                        Detection(
                            detector=name,
                            stream=self.stream,
                            index=self.position,
                            value=float(value),
                        )
                    )
            self.position += 1
        return found


__all__ = [
    "DEFAULT_DETECTORS",
    "Detection",
    "DetectorKind",
    "DetectorSpec",
    "StreamMonitor",
    "make_detector",
]
