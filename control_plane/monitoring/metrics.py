"""Prometheus counters of alerts and notifications, on a registry owned by one control plane.

A registry per :class:`MonitoringMetrics` (not the global default) so several control planes in
one process -- the test suite -- never clash; ``GET /metrics`` exposes it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class MonitoringMetrics:
    """``modelyard_alerts_total``, ``modelyard_alerts_suppressed_total``,
    ``modelyard_notification_attempts_total`` and ``modelyard_notifications_total``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.alerts = Counter(
            "modelyard_alerts",
            "Alerts opened, by type and severity.",
            ["type", "severity"],
            registry=self.registry,
        )
        self.suppressed = Counter(
            "modelyard_alerts_suppressed",
            "Repeated reports folded into an existing alert (de-duplication / cool-down).",
            ["type"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "modelyard_notification_attempts",
            "Delivery attempts, by channel kind and outcome (ok / error).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.notifications = Counter(
            "modelyard_notifications",
            "Deliveries that ended, by channel kind and final state (delivered / dead).",
            ["kind", "state"],
            registry=self.registry,
        )


__all__ = ["MonitoringMetrics"]
