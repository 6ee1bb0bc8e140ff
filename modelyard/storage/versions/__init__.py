"""Alembic revisions of the ``modelyard`` branch (platform tables: audit and prediction logs)."""
