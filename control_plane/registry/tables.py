"""The registry's tables (SQLAlchemy Core); the migration in ``migrations/`` creates them.

``registered_models`` holds one row per name with the highest version handed out: allocating
a version updates that row, which serialises registrations of one name (a row lock on
PostgreSQL, the database write lock on SQLite). A partial unique index allows at most one
Production version per name even if a rule above it were wrong.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(128), sa.ForeignKey("registered_models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("onnx_sha256", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
    sa.Column("lineage", sa.Text, nullable=False),
    sa.Column("mlflow_run_id", sa.String(128), nullable=False),
    sa.Column("parent_version", sa.Integer, nullable=True),
    sa.Column("code_version", sa.String(128), nullable=False),
    sa.Column("dataset_uri", sa.Text, nullable=False),
    sa.Column("dataset_sha256", sa.String(64), nullable=False),
    sa.Column("card_revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Index(
        "ux_model_versions_one_production",
        "name",
        unique=True,
        sqlite_where=sa.text("stage = 'Production'"),
        postgresql_where=sa.text("stage = 'Production'"),
    ),
)

model_cards = sa.Table(
    "model_cards",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True),
    sa.Column("card", sa.Text, nullable=False),
    sa.Column("card_sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

card_reviews = sa.Table(
    "card_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("from_status", sa.String(20), nullable=False),
    sa.Column("to_status", sa.String(20), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("card_sha256", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

model_version_features = sa.Table(
    "model_version_features",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("feature_name", sa.String(128), primary_key=True),
    sa.Column("feature_version", sa.Integer, primary_key=True),
    sa.Index("ix_model_version_features_feature", "feature_name", "feature_version"),
)
