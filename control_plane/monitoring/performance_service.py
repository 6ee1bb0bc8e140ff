"""Performance tracking (property 24) and degradation alerts (property 25).

For a window, the version's prediction records joined with their outcomes (``POST
/v1/feedback``, read through :class:`~control_plane.predictions.service.PredictionService`)
give labelled pairs; :mod:`~control_plane.monitoring.performance` turns them into metrics,
stored as a time series (one point per version, window and metric). Each metric with a
baseline -- the overall metric of the same name on the version's registered model card -- is
compared with it; any degraded metric opens (or feeds) a ``performance_degradation`` alert
listing every compared metric with its value, baseline and allowed drop.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from control_plane.monitoring.models import AlertCandidate, AlertType, FeatureDetail, Severity
from control_plane.monitoring.performance import (
    HIGHER_IS_BETTER,
    classification_metrics,
    degradation,
    regression_metrics,
)
from control_plane.monitoring.performance_models import (
    MetricPoint,
    PerformanceResult,
    PerformanceSpec,
    TrackRequest,
)
from control_plane.registry.naming import check_name
from control_plane.scheduler.scheduler import utc_now
from modelyard.errors import ModelyardError
from modelyard.models import MAX_MAGNITUDE
from modelyard.timestamps import request_window

if TYPE_CHECKING:
    from control_plane.monitoring.performance_store import SqlPerformanceStore
    from control_plane.monitoring.service import AlertService
    from control_plane.predictions.models import LabelledPrediction
    from control_plane.predictions.service import PredictionService
    from control_plane.registry.service import RegistryService
    from modelyard.storage import Database

log = logging.getLogger(__name__)
_ALIASES = {"roc_auc": "auc", "logloss": "log_loss", "f1_score": "f1", "acc": "accuracy"}


class PerformanceService:
    """Metrics per window as a time series, and degradation alerts.

    Args:
        database: the platform database.
        store: specs and metric points.
        predictions: the prediction log's read API.
        alerts: where degradation alerts go.
        registry: the versions' model cards (baselines); without it nothing is compared.
        default_window_s: the window of periodic tracking.
        clock: the wall clock (UTC).
    """

    def __init__(
        self,
        database: Database,
        store: SqlPerformanceStore,
        predictions: PredictionService,
        alerts: AlertService,
        *,
        registry: RegistryService | None = None,
        default_window_s: float = 3600.0,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._database = database
        self._store = store
        self._predictions = predictions
        self._alerts = alerts
        self._registry = registry
        self._default_window = dt.timedelta(seconds=default_window_s)
        self._clock = clock

    async def set_spec(self, model: str, spec: PerformanceSpec) -> PerformanceSpec:
        """Store how ``model``'s answers and outcomes become metrics.

        Raises:
            InvalidArgument: a bad model name.
        """
        check_name(model)
        async with self._database.write() as conn:
            await self._store.put_spec(conn, model, spec, self._clock())
        return spec

    async def spec(self, model: str) -> PerformanceSpec:
        """The model's spec (the conventions' defaults when none is stored)."""
        check_name(model)
        async with self._database.read() as conn:
            return await self._store.spec(conn, model) or PerformanceSpec()

    async def track(
        self, model: str, version: int, request: TrackRequest | None = None
    ) -> PerformanceResult:
        """Compute, store and judge the metrics of one window.

        Raises:
            InvalidArgument: an empty or inverted window.
            NotFound: (from the registry) the version does not exist.
        """
        since, until = self._window(request or TrackRequest())
        spec = await self.spec(model)
        # NOTE: the registry first: an unknown version stored its points before the 404
        baseline = await self._baseline(model, version)
        labels, predicted, unlabelled = await self._pairs(model, version, since, until, spec)
        metrics: dict[str, float] = {}
        if len(labels) >= spec.min_samples:
            metrics = _metrics(spec, labels, predicted)
        points = [
            MetricPoint(
                model=model,
                version=version,
                window_start=since,
                window_end=until,
                metric=name,
                value=value,
                n=len(labels),
            )
            for name, value in metrics.items()
        ]
        async with self._database.write() as conn:
            await self._store.put_points(conn, points, self._clock())
        details = [
            degradation(name, metrics[name], baseline=baseline[name], threshold=spec.threshold)
            for name in sorted(set(metrics) & set(baseline))
        ]
        degraded = [d.feature for d in details if d.flagged]
        alert_id = None
        if degraded:
            alert_id = await self._alert(model, version, since, until, details, spec)
        return PerformanceResult(
            model=model,
            version=version,
            window_start=since,
            window_end=until,
            n=len(labels),
            unlabelled=unlabelled,
            metrics=metrics,
            baseline=baseline,
            degraded=degraded,
            alert_id=alert_id,
        )

    def _window(self, request: TrackRequest) -> tuple[dt.datetime, dt.datetime]:
        width = dt.timedelta(seconds=request.window_s) if request.window_s else None
        return request_window(
            request.since, request.until, width or self._default_window, self._clock()
        )

    async def _pairs(
        self,
        model: str,
        version: int,
        since: dt.datetime,
        until: dt.datetime,
        spec: PerformanceSpec,
    ) -> tuple[list[float], list[float], int]:
        labels: list[float] = []
        predicted: list[float] = []
        unlabelled = 0
        async for item in self._predictions.iter_labelled(model, version, since=since, until=until):
            pair = pair_of(item, spec)
            if pair is None:
                unlabelled += 1
                continue
            labels.append(pair[0])
            predicted.append(pair[1])
        return labels, predicted, unlabelled

    async def _baseline(self, model: str, version: int) -> dict[str, float]:
        if self._registry is None:
            return {}
        card = (await self._registry.get(model, version)).card
        baseline = {}
        for metric in card.metrics:
            name = _ALIASES.get(metric.type.lower(), metric.type.lower())
            if not metric.slice and name in HIGHER_IS_BETTER:
                baseline[name] = metric.value
        return baseline

    async def _alert(
        self,
        model: str,
        version: int,
        since: dt.datetime,
        until: dt.datetime,
        details: list[FeatureDetail],
        spec: PerformanceSpec,
    ) -> int:
        worst = max(d.score for d in details)
        flagged = ", ".join(
            f"{d.feature} {d.baseline:.4g} -> {_value(d):.4g}" for d in details if d.flagged
        )
        alert, _ = await self._alerts.raise_alert(
            AlertCandidate(
                type=AlertType.PERFORMANCE_DEGRADATION,
                severity=Severity.CRITICAL if worst > 2 * spec.threshold else Severity.WARNING,
                model=model,
                version=version,
                window_start=since,
                window_end=until,
                summary=f"below the registration baseline: {flagged}",
                details=tuple(details),
            )
        )
        return alert.id

    async def series(
        self,
        model: str,
        version: int | None = None,
        metric: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[MetricPoint]:
        """The stored metric points, oldest window first."""
        async with self._database.read() as conn:
            return await self._store.points(conn, model, version, metric, since, min(limit, 10000))

    async def track_all(self, versions: list[tuple[str, int]]) -> list[PerformanceResult]:
        """Track the default window of each version; failures are logged and skipped."""
        results = []
        for model, version in versions:
            try:
                results.append(await self.track(model, version))
            except ModelyardError as error:  # NOTE: one version's problem must not stop others
                log.info("performance tracking of %s v%s skipped: %s", model, version, error)
            except Exception:  # NOTE: nor one version's unexpected error (logged in full)
                log.exception("performance tracking of %s v%s failed", model, version)
        return results


def _value(detail: FeatureDetail) -> float:
    """The metric value back from a degradation detail (relative drop and baseline)."""
    base = detail.baseline or 0.0
    drop = detail.score * abs(base) if base else detail.score
    return base - drop if HIGHER_IS_BETTER[detail.feature] else base + drop


def _metrics(
    spec: PerformanceSpec, labels: list[float], predicted: list[float]
) -> dict[str, float]:
    if spec.task == "regression":
        return regression_metrics(labels, predicted)
    return classification_metrics([int(y) for y in labels], predicted)


def first_value(value: Any, index: int) -> float | None:
    """The number at ``index`` of an output value (a scalar, a row, or a ``[1, n]`` row)."""
    if isinstance(value, list):
        while value and isinstance(value[0], list):  # a [1, n] row tensor
            value = value[0]
        value = value[index] if index < len(value) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def pair_of(item: LabelledPrediction, spec: PerformanceSpec) -> tuple[float, float] | None:
    """(label, prediction) of one labelled record; ``None`` without outcome or output, or
    with a target or prediction of magnitude :data:`~modelyard.models.MAX_MAGNITUDE` or more
    (their squared errors would overflow: RMSE infinite, unstorable)."""
    outcome = item.outcome
    if outcome is None:
        return None
    outputs = item.record.outputs
    if spec.task == "regression":
        target = outcome.value if outcome.value is not None else outcome.label
        guess = first_value(outputs.get(spec.prediction_output), 0)
        if guess is None or isinstance(target, str | None | bool):
            return None
        if abs(target) >= MAX_MAGNITUDE or abs(guess) >= MAX_MAGNITUDE:
            return None
        return float(target), guess
    label: Any = outcome.label if outcome.label is not None else outcome.conversion
    score = first_value(outputs.get(spec.score_output), spec.score_index)
    if score is None or label is None:
        return None
    # NOTE: an integral label is "1" whatever its type (as category_keys makes it): a label of
    # 1.0 read back as 1 from SQLite's JSON and as 1.0 from PostgreSQL's, and only the first
    # was the positive class
    integral = isinstance(label, bool) or (
        isinstance(label, float) and label.is_integer() and abs(label) < 2**53
    )
    text = str(int(label)) if integral else str(label)
    return float(text == spec.positive_label), score


__all__ = ["PerformanceService", "first_value", "pair_of"]
