"""Wiring of the monitoring feature: one store, one notifier, one alert service, one metrics set."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from control_plane.monitoring.drift_service import DriftService
from control_plane.monitoring.drift_store import SqlDriftStore
from control_plane.monitoring.metrics import MonitoringMetrics
from control_plane.monitoring.notifier import Notifier
from control_plane.monitoring.performance_service import PerformanceService
from control_plane.monitoring.performance_store import SqlPerformanceStore
from control_plane.monitoring.service import AlertService
from control_plane.monitoring.sketch_client import SketchClient
from control_plane.monitoring.store import SqlMonitoringStore
from control_plane.monitoring.streaming import StreamingDetection
from control_plane.scheduler import JobRun, Schedule, Scheduler
from control_plane.scheduler.scheduler import utc_now

if TYPE_CHECKING:
    from control_plane.predictions.service import PredictionService
    from control_plane.registry.publisher import RepositoryPublisher
    from control_plane.registry.service import RegistryService
    from modelyard.settings import MonitoringSettings
    from modelyard.storage import Database

DRIFT_JOB = "monitoring.drift-checks"
REFERENCES_JOB = "monitoring.publish-references"
PERFORMANCE_JOB = "monitoring.performance"
STREAMING_JOB = "monitoring.streaming"


@dataclass
class Monitoring:
    """The monitoring feature's parts; the composition root starts and stops ``notifier``."""

    metrics: MonitoringMetrics
    store: SqlMonitoringStore
    notifier: Notifier
    alerts: AlertService
    drift: DriftService
    performance: PerformanceService | None
    """Present when the prediction log is (the control plane always has it)."""
    streaming: StreamingDetection | None

    def register_jobs(self, scheduler: Scheduler, settings: MonitoringSettings) -> None:
        """Periodic drift checks, and the ``reference.json`` sweep every minute."""

        async def check(_: JobRun) -> None:
            await self.drift.check_all()

        async def publish(_: JobRun) -> None:
            await self.drift.publish_references()

        scheduler.register(DRIFT_JOB, Schedule.parse(settings.drift_check_interval), check)
        scheduler.register(REFERENCES_JOB, Schedule.parse("every 1m"), publish)
        performance = self.performance
        if performance is not None:

            async def track(_: JobRun) -> None:
                await performance.track_all(await self.drift.monitored_versions())

            interval = Schedule.parse(settings.drift_check_interval)
            scheduler.register(PERFORMANCE_JOB, interval, track)
        streaming = self.streaming
        if streaming is not None:

            async def detect(_: JobRun) -> None:
                await streaming.poll(await self.drift.monitored_versions())

            scheduler.register(STREAMING_JOB, Schedule.parse(settings.streaming_interval), detect)


def build_monitoring(
    settings: MonitoringSettings,
    database: Database,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    rng: random.Random | None = None,
    sketches: SketchClient | None = None,
    publisher: RepositoryPublisher | None = None,
    registry: RegistryService | None = None,
    predictions: PredictionService | None = None,
) -> Monitoring:
    """Build the monitoring feature over ``database`` (no inference servers unless
    ``sketches`` names them)."""
    metrics = MonitoringMetrics()
    store = SqlMonitoringStore()
    notifier = Notifier(database, store, settings, metrics, clock=clock, rng=rng)
    alerts = AlertService(
        database, store, notifier, metrics, cooldown_s=settings.alert_cooldown_s, clock=clock
    )
    drift = DriftService(
        database,
        SqlDriftStore(),
        alerts,
        sketches or SketchClient(()),
        publisher=publisher,
        registry=registry,
        default_window_s=settings.drift_window_s,
        clock=clock,
    )
    performance = streaming = None
    if predictions is not None:
        performance = PerformanceService(
            database,
            SqlPerformanceStore(),
            predictions,
            alerts,
            registry=registry,
            default_window_s=settings.drift_window_s,
            clock=clock,
        )
        streaming = StreamingDetection(
            predictions, performance, alerts, lookback_s=settings.drift_window_s, clock=clock
        )
    return Monitoring(
        metrics=metrics,
        store=store,
        notifier=notifier,
        alerts=alerts,
        drift=drift,
        performance=performance,
        streaming=streaming,
    )


__all__ = ["Monitoring", "build_monitoring"]
