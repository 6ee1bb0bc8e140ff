"""Monitoring's tables (SQLAlchemy Core), as the ``monitoring`` Alembic branch creates them.

- ``monitoring_alerts``: one row per alert; ``dedup_key`` (type, model, version, source)
  finds the alert a repeated report folds into.
- ``monitoring_channels``: notification channels by name.
- ``monitoring_deliveries``: one row per (alert, channel) with its retry state; the
  dispatcher claims a due row with a lease (``lease_until``) so replicas never send twice.
- ``monitoring_delivery_attempts``: every attempt of every delivery.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

monitoring_alerts = sa.Table(
    "monitoring_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("dedup_key", sa.String(400), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_by", sa.String(200), nullable=True),
)

monitoring_channels = sa.Table(
    "monitoring_channels",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("types", sa.Text, nullable=False),
    sa.Column("min_severity", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

monitoring_deliveries = sa.Table(
    "monitoring_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("monitoring_alerts.id"), nullable=False),
    sa.Column("channel", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
)

monitoring_delivery_attempts = sa.Table(
    "monitoring_delivery_attempts",
    metadata,
    sa.Column(
        "delivery_id", sa.Integer, sa.ForeignKey("monitoring_deliveries.id"), primary_key=True
    ),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
)

monitoring_references = sa.Table(
    "monitoring_references",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

monitoring_drift_policies = sa.Table(
    "monitoring_drift_policies",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

monitoring_drift_reports = sa.Table(
    "monitoring_drift_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("drifted", sa.Boolean, nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("alert_id", sa.Integer, nullable=True),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("window", sa.Text, nullable=False),
)

monitoring_performance_specs = sa.Table(
    "monitoring_performance_specs",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

monitoring_performance = sa.Table(
    "monitoring_performance",
    metadata,
    sa.Column("model", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("window_end", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("metric", sa.String(32), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


__all__ = [
    "metadata",
    "monitoring_alerts",
    "monitoring_channels",
    "monitoring_deliveries",
    "monitoring_delivery_attempts",
    "monitoring_drift_policies",
    "monitoring_drift_reports",
    "monitoring_performance",
    "monitoring_performance_specs",
    "monitoring_references",
]
