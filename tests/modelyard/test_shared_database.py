"""modelyard and MLflow on one PostgreSQL server, as the compose stack runs them.

Both migrate with Alembic and both define a ``registered_models`` table, so they cannot share
one database (or schema): each gets its own database on the same server
(``docker/postgres-init.sql``). Our revisions also live in a version table of our own,
``modelyard_alembic_version``, so that even a shared database never mixes the two histories;
a database from before that rule (our revisions in ``alembic_version``) is adopted on its next
upgrade.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

from modelyard.storage import Database, upgrade
from modelyard.storage.migrations import VERSION_TABLE, known_heads
from tests.conftest import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.slow


def _sync_url(database: str) -> str:
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base.rsplit('/', 1)[0]}/{database}"


async def _create_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _tables(url: str) -> dict[str, list[str]]:
    """Every version table in the schema with the revisions it holds."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = [n for n in sa.inspect(conn).get_table_names() if "alembic" in n]
            return {
                n: sorted(r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {n}")))
                for n in names
            }
    finally:
        engine.dispose()


def _mlflow_migrate(url: str, tmp_path: Path) -> None:
    SqlAlchemyStore(url, str(tmp_path / "mlartifacts")).engine.dispose()


@pytest.mark.parametrize("mlflow_first", [True, False], ids=["mlflow-first", "modelyard-first"])
def test_both_migration_sets_on_one_postgresql_server(mlflow_first: bool, tmp_path: Path) -> None:
    require_postgres()
    suffix = uuid.uuid4().hex[:10]
    ours, mlflows = f"modelyard_{suffix}", f"mlflow_{suffix}"
    for name in (ours, mlflows):
        asyncio.run(_create_database(name))
    our_url = _sync_url(ours).replace("+psycopg", "")

    async def modelyard_migrate() -> list[str]:
        database = Database(our_url)
        try:
            return await upgrade(database)
        finally:
            await database.dispose()

    try:
        if mlflow_first:
            _mlflow_migrate(_sync_url(mlflows), tmp_path)
        assert asyncio.run(modelyard_migrate()) == known_heads()
        if not mlflow_first:
            _mlflow_migrate(_sync_url(mlflows), tmp_path)
        _mlflow_migrate(_sync_url(mlflows), tmp_path)  # a restart: MLflow checks its revision
        assert asyncio.run(modelyard_migrate()) == known_heads()
        assert _tables(_sync_url(ours)) == {VERSION_TABLE: known_heads()}
        assert list(_tables(_sync_url(mlflows))) == ["alembic_version"]
    finally:
        for name in (ours, mlflows):
            asyncio.run(_drop_database(name))


async def test_a_database_from_before_the_rule_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    database = Database(url)
    try:
        heads = await upgrade(database)
        async with database.engine.begin() as conn:
            await conn.execute(sa.text(f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version"))
        assert await upgrade(database) == heads
    finally:
        await database.dispose()
    assert _tables(url) == {VERSION_TABLE: heads}
