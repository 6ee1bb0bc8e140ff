"""Alembic revisions of the ``registry`` branch."""
