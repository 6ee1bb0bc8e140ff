"""Alembic revisions of the ``scheduler`` branch (the scheduler's lease table)."""
