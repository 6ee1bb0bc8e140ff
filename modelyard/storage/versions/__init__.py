"""Alembic revisions of the ``modelyard`` branch (platform-wide tables: the audit log)."""
