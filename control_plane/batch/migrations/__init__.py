"""Alembic revisions of the ``batch`` branch (the batch jobs table)."""
