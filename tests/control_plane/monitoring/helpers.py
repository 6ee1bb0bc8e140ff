"""Shared builders for monitoring tests."""

from __future__ import annotations

import datetime as dt
import random

import msgspec

from control_plane.monitoring.build import Monitoring, build_monitoring
from control_plane.monitoring.models import AlertCandidate, AlertType, FeatureDetail, Severity
from control_plane.scheduler import ManualClock
from modelyard.settings import MonitoringSettings
from modelyard.storage import Database

T0 = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def settings(smtp_port: int = 25, **overrides: object) -> MonitoringSettings:
    """Monitoring settings for tests: fast retries, the test's SMTP port."""
    base = MonitoringSettings(
        smtp_port=smtp_port,
        notify_timeout_s=5.0,
        notify_max_attempts=3,
        notify_backoff_s=1.0,
        notify_backoff_max_s=10.0,
        notify_poll_s=0.05,
        alert_cooldown_s=600.0,
    )
    return msgspec.structs.replace(base, **overrides)


def build(
    database: Database, config: MonitoringSettings, clock: ManualClock | None = None
) -> tuple[Monitoring, ManualClock]:
    """The monitoring feature on a manual clock (seeded jitter)."""
    clock = clock or ManualClock(T0)
    return build_monitoring(config, database, clock=clock, rng=random.Random(1)), clock


def drift_candidate(
    model: str = "churn",
    version: int = 1,
    severity: Severity = Severity.WARNING,
    type: AlertType = AlertType.DRIFT,
    source: str = "",
) -> AlertCandidate:
    """A drift report's alert with two feature details."""
    return AlertCandidate(
        type=type,
        severity=severity,
        model=model,
        version=version,
        window_start=T0 - dt.timedelta(hours=1),
        window_end=T0,
        summary="2 of 3 features drifted (share 0.67 >= 0.5)",
        details=(
            FeatureDetail(
                feature="tenure",
                method="ks",
                score=0.31,
                threshold=0.05,
                flagged=True,
                p_value=0.001,
            ),
            FeatureDetail(
                feature="plan",
                method="chisquare",
                score=12.5,
                threshold=0.05,
                flagged=True,
                p_value=0.002,
            ),
        ),
        source=source,
    )


def build_monitoring_real_clock(database: Database, config: MonitoringSettings) -> Monitoring:
    """The monitoring feature on the wall clock (for the background dispatcher)."""
    return build_monitoring(config, database, rng=random.Random(1))
