"""Wiring of the monitoring feature: one store, one notifier, one alert service, one metrics set."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from control_plane.monitoring.metrics import MonitoringMetrics
from control_plane.monitoring.notifier import Notifier
from control_plane.monitoring.service import AlertService
from control_plane.monitoring.store import SqlMonitoringStore
from control_plane.scheduler.scheduler import utc_now

if TYPE_CHECKING:
    from modelyard.settings import MonitoringSettings
    from modelyard.storage import Database


@dataclass
class Monitoring:
    """The monitoring feature's parts; the composition root starts and stops ``notifier``."""

    metrics: MonitoringMetrics
    store: SqlMonitoringStore
    notifier: Notifier
    alerts: AlertService


def build_monitoring(
    settings: MonitoringSettings,
    database: Database,
    *,
    clock: Callable[[], dt.datetime] = utc_now,
    rng: random.Random | None = None,
) -> Monitoring:
    """Build the monitoring feature over ``database``."""
    metrics = MonitoringMetrics()
    store = SqlMonitoringStore()
    notifier = Notifier(database, store, settings, metrics, clock=clock, rng=rng)
    alerts = AlertService(
        database, store, notifier, metrics, cooldown_s=settings.alert_cooldown_s, clock=clock
    )
    return Monitoring(metrics=metrics, store=store, notifier=notifier, alerts=alerts)


__all__ = ["Monitoring", "build_monitoring"]
