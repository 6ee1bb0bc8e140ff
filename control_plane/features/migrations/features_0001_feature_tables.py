"""Feature store tables: heads, immutable versions keyed by (name, version), tags.

Revision ID: features_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "features_0001"
down_revision = None
branch_labels = ("features",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "features",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("deprecated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("deprecated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deprecated_by", sa.String(200), nullable=True),
        sa.UniqueConstraint("name", name="uq_features_name"),
    )
    op.create_table(
        "feature_versions",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("feature_id", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("dtype", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("transformation", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_feature_versions"),
        sa.ForeignKeyConstraint(["name"], ["features.name"], name="fk_feature_versions_name"),
        sa.ForeignKeyConstraint(["feature_id"], ["features.id"], name="fk_feature_versions_id"),
    )
    op.create_index("ix_feature_versions_feature_id", "feature_versions", ["feature_id"])
    op.create_index("ix_feature_versions_entity", "feature_versions", ["entity"])
    op.create_index("ix_feature_versions_owner", "feature_versions", ["owner"])
    op.create_table(
        "feature_tags",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", "version", "tag", name="pk_feature_tags"),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["feature_versions.name", "feature_versions.version"],
            name="fk_feature_tags_version",
        ),
    )
    op.create_index("ix_feature_tags_tag", "feature_tags", ["tag"])


def downgrade() -> None:
    op.drop_table("feature_tags")
    op.drop_table("feature_versions")
    op.drop_table("features")
