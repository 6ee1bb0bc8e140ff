"""A feature service over each backend."""

from __future__ import annotations

import pytest

from control_plane.features.service import FeatureService
from modelyard.storage import Database
from tests.control_plane.features.strategies import build_service


@pytest.fixture
def features(database: Database) -> FeatureService:
    """A feature service over a fresh migrated database (SQLite and PostgreSQL)."""
    return build_service(database)
