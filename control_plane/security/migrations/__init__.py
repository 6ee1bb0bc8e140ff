"""Alembic revisions of the ``security`` branch (API tokens)."""
