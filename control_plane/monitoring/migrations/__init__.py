"""Alembic revisions of the ``monitoring`` branch (alerts, channels, deliveries)."""
