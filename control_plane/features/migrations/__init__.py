"""Alembic revisions of the ``features`` branch (the feature store's tables)."""
