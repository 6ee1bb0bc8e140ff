"""Monitoring: alerts, notification channels, deliveries and their attempts; reference
profiles, drift policies and drift reports.

Revision ID: monitoring_0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitoring_0001"
down_revision = None
branch_labels = ("monitoring",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_alerts",
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
    op.create_index("ix_monitoring_alerts_dedup", "monitoring_alerts", ["dedup_key", "id"])
    op.create_index("ix_monitoring_alerts_model", "monitoring_alerts", ["model", "version"])
    op.create_table(
        "monitoring_channels",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("types", sa.Text, nullable=False),
        sa.Column("min_severity", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitoring_channels"),
    )
    op.create_table(
        "monitoring_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["monitoring_alerts.id"], name="fk_monitoring_deliveries_alert"
        ),
    )
    op.create_index(
        "ix_monitoring_deliveries_due", "monitoring_deliveries", ["state", "next_attempt_at"]
    )
    op.create_table(
        "monitoring_delivery_attempts",
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name="pk_monitoring_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["monitoring_deliveries.id"], name="fk_monitoring_attempts_delivery"
        ),
    )
    op.create_table(
        "monitoring_references",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name="pk_monitoring_references"),
    )
    op.create_table(
        "monitoring_drift_policies",
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", name="pk_monitoring_drift_policies"),
    )
    op.create_table(
        "monitoring_drift_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("share", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=True),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("window", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_monitoring_drift_reports_model", "monitoring_drift_reports", ["model", "version", "id"]
    )


def downgrade() -> None:
    op.drop_table("monitoring_drift_reports")
    op.drop_table("monitoring_drift_policies")
    op.drop_table("monitoring_references")
    op.drop_table("monitoring_delivery_attempts")
    op.drop_table("monitoring_deliveries")
    op.drop_table("monitoring_channels")
    op.drop_table("monitoring_alerts")
