"""The feature store's tables (SQLAlchemy Core), as the ``features`` Alembic branch creates them.

:mod:`control_plane.features.store` explains the design; the migration
``features_0001_feature_tables`` must create exactly these (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

features = sa.Table(
    "features",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("deprecated", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("deprecated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("deprecated_by", sa.String(200), nullable=True),
)

feature_versions = sa.Table(
    "feature_versions",
    metadata,
    sa.Column("name", sa.String(128), sa.ForeignKey("features.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("feature_id", sa.String(32), sa.ForeignKey("features.id"), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("dtype", sa.String(16), nullable=False),
    sa.Column("entity", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("transformation", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

feature_tags = sa.Table(
    "feature_tags",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.ForeignKeyConstraint(
        ["name", "version"], ["feature_versions.name", "feature_versions.version"]
    ),
)


__all__ = ["feature_tags", "feature_versions", "features", "metadata"]
