"""Alembic revisions of the retraining tables (branch ``retraining``)."""
