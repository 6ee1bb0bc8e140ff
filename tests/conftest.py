"""Shared fixtures: the store contract backends and free-port servers.

Every store test takes the ``database`` fixture (async tests) or ``sync_database`` (hypothesis
property tests, which must be synchronous) and so runs once on SQLite and once on PostgreSQL;
the test ids end in ``[sqlite]`` / ``[postgresql]``. Each PostgreSQL test gets its own schema,
dropped afterwards, so parallel runs never collide. PostgreSQL comes from
``MODELYARD_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); when
it is unreachable the PostgreSQL half is skipped locally and FAILS under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from hypothesis import settings

from modelyard.storage import Database, upgrade

# Properties check answers, not speed (performance lives in benchmarks/): no per-example
# deadline, which a shared 2-core machine under load would turn into flaky failures.
settings.register_profile("modelyard", deadline=None)
settings.load_profile("modelyard")

T = TypeVar("T")

POSTGRES_URL = os.environ.get(
    "MODELYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


async def _postgres_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        return f"{type(error).__name__}: {error}"
    await conn.close()
    return None


def require_postgres() -> None:
    """Skip (locally) or fail (CI=true) when PostgreSQL cannot be reached."""
    problem = asyncio.run(_postgres_reachable())
    if problem is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable ({problem})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI requires it", pytrace=False)
    pytest.skip(message)


class PostgresSchema:
    """A throw-away PostgreSQL schema for one test."""

    def __init__(self) -> None:
        self.name = f"t_{uuid.uuid4().hex[:16]}"

    async def create(self) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'CREATE SCHEMA "{self.name}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
        finally:
            await conn.close()


async def open_database(backend: str, tmp_path: Path) -> tuple[Database, PostgresSchema | None]:
    """A migrated database of ``backend``; the schema (PostgreSQL) to drop afterwards."""
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'modelyard.db'}")
        await upgrade(database)
        return database, None
    schema = PostgresSchema()
    await schema.create()
    database = Database(POSTGRES_URL, schema=schema.name)
    await upgrade(database)
    return database, schema


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``; PostgreSQL availability is checked (CI fails without)."""
    name: str = request.param
    if name == "postgresql":
        require_postgres()
    return name


@pytest.fixture
async def database(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database on each backend, for async tests."""
    db, schema = await open_database(backend, tmp_path)
    try:
        yield db
    finally:
        try:
            await db.dispose()  # warns (an error here) if a task still holds a connection
        finally:
            if schema is not None:
                await schema.drop()


class SyncDatabase:
    """A migrated database bound to a private event loop, for synchronous (hypothesis) tests.

    Hypothesis runs many examples against the same database: tests must use fresh names per
    example (the ``unique`` helper) rather than assume an empty store.
    """

    def __init__(self, runner: asyncio.Runner, database: Database, backend: str) -> None:
        self._runner = runner
        self.database = database
        self.backend = backend

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion on the database's loop."""
        return self._runner.run(coro)

    @staticmethod
    def unique(prefix: str = "x") -> str:
        """A name no other example has used."""
        return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sync_database(backend: str, tmp_path: Path) -> Iterator[SyncDatabase]:
    """A migrated database on each backend, for synchronous property tests."""
    with asyncio.Runner() as runner:
        db, schema = runner.run(open_database(backend, tmp_path))
        try:
            yield SyncDatabase(runner, db, backend)
        finally:
            try:
                runner.run(db.dispose())
            finally:
                if schema is not None:
                    runner.run(schema.drop())


ROOT = Path(__file__).resolve().parents[1]
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"


@pytest.fixture(scope="session")
def clients_python() -> Path:
    """The interpreter of the tritonclient venv (``make install`` builds it).

    tritonclient's protos clash with ours in one process (MLServer #1831), so client tests
    run their client code in a subprocess of this interpreter.
    """
    if not CLIENTS_PYTHON.exists():
        pytest.fail(f"{CLIENTS_PYTHON} is missing: run `make install`", pytrace=False)
    return CLIENTS_PYTHON
