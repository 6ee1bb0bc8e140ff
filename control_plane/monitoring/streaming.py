"""Streaming detectors on every monitored version's score and error streams, for fast alarms
between periodic drift checks.

Each pass (the ``monitoring.streaming`` job) reads, per version under monitoring, the records
logged since its cursor (shadow copies left out) and feeds their scores -- the positive-class
probability, or the regression prediction (:class:`PerformanceSpec` says which) -- to a
:class:`~control_plane.monitoring.detectors.StreamMonitor`; records that have an outcome feed
their error (``|label - score|``) to a second monitor. A detection raises a
``streaming_drift`` alert (one per stream and detector while it is open).

The detectors' state lives in the replica that runs the pass. When the job moves to another
replica, that replica catches up from its own cursor: every value is still fed in order, at
the cost of computing it twice. A new version starts ``lookback`` before the first pass.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from control_plane.monitoring.detectors import DEFAULT_DETECTORS, Detection, StreamMonitor
from control_plane.monitoring.models import AlertCandidate, AlertType, FeatureDetail, Severity
from control_plane.monitoring.performance_service import first_value, pair_of
from control_plane.scheduler.scheduler import utc_now

if TYPE_CHECKING:
    from control_plane.monitoring.performance_models import PerformanceSpec
    from control_plane.monitoring.performance_service import PerformanceService
    from control_plane.monitoring.service import AlertService
    from control_plane.predictions.service import PredictionService

PAGE = 1000
MAX_SEEN = 200_000


log = logging.getLogger(__name__)


@dataclass
class _Streams:
    score: StreamMonitor
    error: StreamMonitor
    cursor: int | None = None
    started: dt.datetime | None = None
    labelled: set[int] = field(default_factory=set)
    """Record ids whose error was fed (outcomes arrive late, so records are re-read)."""
    pending: list[Detection] = field(default_factory=list)
    """Detections whose alert is not written yet (a failed write: retried at the next poll)."""


class StreamingDetection:
    """Score and error detectors per monitored version.

    Args:
        predictions: the prediction log's read API.
        performance: gives each model's spec (which output is the score).
        alerts: where detections go.
        lookback_s: how far back a newly monitored version starts, and how long outcomes
            may arrive after their record and still feed the error stream.
        seed: KSWIN's sampling seed.
        clock: the wall clock (UTC).
    """

    def __init__(
        self,
        predictions: PredictionService,
        performance: PerformanceService,
        alerts: AlertService,
        *,
        lookback_s: float = 3600.0,
        seed: int = 0,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._predictions = predictions
        self._performance = performance
        self._alerts = alerts
        self._lookback = dt.timedelta(seconds=lookback_s)
        self._seed = seed
        self._clock = clock
        self._streams: dict[tuple[str, int], _Streams] = {}

    async def poll(self, versions: list[tuple[str, int]]) -> list[Detection]:
        """Feed every new value of ``versions``; raise an alert per detection.

        One version's failure (a read, an alert's write) is logged and the others are polled
        all the same. A detection whose alert could not be written is kept and raised at the
        next poll: the values that made it have been fed, so it would not come again.

        Returns:
            The detections whose alerts this poll raised.
        """
        found: list[Detection] = []
        for model, version in versions:
            try:
                found += await self._poll_version(model, version)
            except Exception:
                log.exception("streaming detection of %s v%d failed; retried", model, version)
        return found

    async def _poll_version(self, model: str, version: int) -> list[Detection]:
        streams = self._streams.get((model, version))
        if streams is None:
            streams = _Streams(
                score=StreamMonitor("score", DEFAULT_DETECTORS, self._seed),
                error=StreamMonitor("error", DEFAULT_DETECTORS, self._seed),
            )
            self._streams[(model, version)] = streams
        spec = await self._performance.spec(model)
        streams.pending += await self._scores(model, version, streams, spec)
        raised = await self._raise(model, version, streams)  # NOTE: before the errors are read
        streams.pending += await self._errors(model, version, streams, spec)
        return raised + await self._raise(model, version, streams)

    async def _raise(self, model: str, version: int, streams: _Streams) -> list[Detection]:
        """Alert every pending detection of ``streams`` in order (kept from the first failure)."""
        raised: list[Detection] = []
        while streams.pending:
            await self._alert(model, version, streams.pending[0])
            raised.append(streams.pending.pop(0))
        return raised

    async def _scores(
        self, model: str, version: int, streams: _Streams, spec: PerformanceSpec
    ) -> list[Detection]:
        now = self._clock()
        since = None if streams.cursor is not None else now - self._lookback
        streams.started = streams.started or now - self._lookback
        hits: list[Detection] = []
        while True:
            page = await self._predictions.list_predictions(
                model=model, version=version, since=since, limit=PAGE, cursor=streams.cursor
            )
            values = [
                s for r in page.items if not r.shadow and (s := _score(r.outputs, spec)) is not None
            ]
            hits += streams.score.update(values)
            if page.items:
                streams.cursor = page.items[-1].id
            if page.next_cursor is None:
                return hits

    async def _errors(
        self, model: str, version: int, streams: _Streams, spec: PerformanceSpec
    ) -> list[Detection]:
        since = max(streams.started or self._clock(), self._clock() - self._lookback)
        errors = []
        async for item in self._predictions.iter_labelled(model, version, since=since):
            record_id = item.record.id
            pair = pair_of(item, spec)
            if record_id is None or pair is None or record_id in streams.labelled:
                continue
            streams.labelled.add(record_id)
            errors.append(abs(pair[0] - pair[1]))
        if len(streams.labelled) > MAX_SEEN:  # NOTE: ids are increasing; keep the newest
            streams.labelled = set(sorted(streams.labelled)[-MAX_SEEN // 2 :])
        return streams.error.update(errors)

    async def _alert(self, model: str, version: int, hit: Detection) -> None:
        now = self._clock()
        await self._alerts.raise_alert(
            AlertCandidate(
                type=AlertType.STREAMING_DRIFT,
                severity=Severity.WARNING,
                model=model,
                version=version,
                window_start=now - self._lookback,
                window_end=now,
                summary=f"{hit.detector} detected a change in the {hit.stream} stream at "
                f"value #{hit.index} ({hit.value:.4g})",
                details=(
                    FeatureDetail(
                        feature=hit.stream,
                        method=hit.detector,
                        score=hit.value,
                        threshold=0.0,
                        flagged=True,
                    ),
                ),
                source=f"{hit.stream}:{hit.detector}",
            )
        )


def _score(outputs: Mapping[str, object], spec: PerformanceSpec) -> float | None:
    if spec.task == "regression":
        return first_value(outputs.get(spec.prediction_output), 0)
    return first_value(outputs.get(spec.score_output), spec.score_index)


__all__ = ["StreamingDetection"]
