"""One async storage layer over SQLite (embedded default) and PostgreSQL (production).

SQLAlchemy 2 Core on the ``aiosqlite`` and ``asyncpg`` drivers hides the dialects; Alembic runs
the versioned migrations (docs/architecture.md says why this beat hand-written SQL). Stores
are Protocols with one implementation written against SQLAlchemy Core, exercised by one
contract suite on both backends.
"""

from __future__ import annotations

from modelyard.storage.database import Database, to_async_url
from modelyard.storage.migrations import migration_locations, upgrade
from modelyard.storage.text import storable_text

__all__ = ["Database", "migration_locations", "storable_text", "to_async_url", "upgrade"]
