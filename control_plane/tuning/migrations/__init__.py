"""Alembic revisions of the ``tuning`` branch (the tuning jobs table)."""
