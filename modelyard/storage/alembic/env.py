"""Alembic environment: migrations always run on a connection modelyard hands over.

The async engine runs them through ``AsyncConnection.run_sync``; no URL is read here.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table=context.config.attributes["version_table"],
)
with context.begin_transaction():
    context.run_migrations()
