"""Alembic revisions of the ``abtesting`` branch (the A/B tests table)."""
