"""Alembic revisions of the ``predictions`` branch (the ``outcomes`` table)."""
