"""The :class:`Database` handle: an async engine plus the transaction rules of each dialect.

Writers must never interleave in a way that loses a version number. PostgreSQL gives that with
row locks (``SELECT ... FOR UPDATE``, which stores use); SQLite has one writer at a time, so a
write transaction starts with ``BEGIN IMMEDIATE`` (take the write lock up front, wait on it for
``busy_timeout``) instead of pysqlite's deferred BEGIN, which fails a read-then-write
transaction when another connection commits in between. SQLite runs in WAL mode so readers
never block the writer.

:meth:`Database.dispose` closes only the connections in the pool; one still checked out by a
task that outlived its owner is never closed, so ``dispose`` warns about it (ResourceWarning).

A PostgreSQL database may be confined to one schema (``search_path``): the test suite gives
every test its own schema so parallel runs never collide.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from modelyard.errors import ConfigurationError

_SQLITE_BEGIN = "sqlite_begin"

SQLITE_PAGE_SIZE = 16384
"""Page size of a SQLite database this process creates (SQLite's default is 4,096).

The prediction log writes large rows (``prediction_log_block.payload``: hundreds of KB, one per
block) that SQLite stores as overflow-page chains, each page written to the WAL and again to
the database at a checkpoint; with 16 KB pages the server's shipper thread spent 0.45 us per
logged request instead of 0.65 (2026-12-04, 22 runs of 64 requests per 50 ms, 294 B of block
per request, 3 rounds: 0.436/0.459/0.456 against 0.646/0.660/0.648; 64 KB pages 0.50-0.57).
The control plane's small rows do not notice. SQLite sets the page size only while a file is
empty, so a database created before this setting keeps 4,096 (``VACUUM`` in rollback-journal
mode would convert it)."""


def to_async_url(url: str) -> URL:
    """Map a user-facing URL to the SQLAlchemy async driver URL.

    >>> to_async_url("sqlite:///.modelyard/m.db").drivername
    'sqlite+aiosqlite'
    >>> to_async_url("postgresql://postgres@127.0.0.1:5432/test").drivername
    'postgresql+asyncpg'

    Raises:
        ConfigurationError: the scheme is neither SQLite nor PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError(f"invalid database URL {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigurationError(f"invalid database URL {url!r}: expected sqlite or postgresql")


class Database:
    """An async database handle shared by every store of one process.

    Args:
        url: ``sqlite:///path`` or ``postgresql://...``.
        schema: PostgreSQL schema to confine every connection to (tests); ``None`` for the
            server default.
        pool_size: PostgreSQL connections per process.
    """

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 5) -> None:
        self.url = url
        self.schema = schema
        async_url = to_async_url(url)
        self.dialect = async_url.get_backend_name()
        self.engine: AsyncEngine = self._create_engine(async_url, pool_size)

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite backend."""
        return self.dialect == "sqlite"

    def _create_engine(self, url: URL, pool_size: int) -> AsyncEngine:
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            _install_sqlite_transaction_rules(engine)
            return engine
        connect_args: dict[str, Any] = {}
        if self.schema is not None:
            connect_args["server_settings"] = {"search_path": self.schema}
        return create_async_engine(
            url, pool_size=pool_size, pool_pre_ping=True, connect_args=connect_args
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction (rolled back at the end)."""
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on success, rolled back on error.

        On SQLite it holds the database write lock from its first statement.
        """
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
            async with conn.begin():
                yield conn

    def connections_in_use(self) -> int:
        """How many connections are checked out of the pool now."""
        pool = self.engine.pool
        return pool.checkedout() if isinstance(pool, QueuePool) else 0

    async def dispose(self) -> None:
        """Close every pooled connection.

        Call it once every task that uses the database has ended. A connection still checked
        out is never closed: it goes back to a pool that is gone. So that this shows at its
        cause (in tests, where warnings are errors) rather than as an unclosed-connection
        ResourceWarning wherever the garbage collector later runs, it warns.

        Warns:
            ResourceWarning: connections were still in use.
        """
        in_use = self.connections_in_use()
        await self.engine.dispose()
        if in_use:
            warnings.warn(
                f"{self.dialect} database disposed of with {in_use} connection(s) still in use "
                "by a task that outlived its owner's stop()",
                ResourceWarning,
                stacklevel=2,
            )


_WAL_RETRY_S = 30.0
"""How long a connection keeps trying to switch a new file to WAL while others do too."""


def _enter_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while SQLite says the database is locked.

    Processes that open a new file at the same moment (control-plane replicas starting at
    once) all switch it to WAL, and a switch that meets another one fails with "database is
    locked" at once, without waiting for ``busy_timeout`` (seen in the replicas test: one start
    in about 15 failed). Backing off 5 ms doubling to 200 ms, for up to ``_WAL_RETRY_S``.
    """
    deadline = time.monotonic() + _WAL_RETRY_S
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # NOTE: the driver's OperationalError, adapted or not
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _install_sqlite_transaction_rules(engine: AsyncEngine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, so write transactions can be IMMEDIATE."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        # NOTE: takes effect only on a new, empty file (before WAL mode and the first table);
        # a database created earlier keeps its page size. See SQLITE_PAGE_SIZE.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        _enter_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
