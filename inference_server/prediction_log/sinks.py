"""Where shipped spool records go: ``prediction_log_block`` (blocks) on SQLite or PostgreSQL.

A batch of spool records is written in one transaction. Blocks go to ``prediction_log_block``,
one row each (:func:`modelyard.prediction_blocks.block_values`; the payload is the block's
bytes as spooled -- MessagePack, or JSON from a previous release's segment -- not encoded
again), ignoring a key that is already there, so replaying spool records is harmless; the
control plane unpacks them. Records of the per-row spool format written before blocks (a
spool left by an earlier release) go to ``prediction_log`` as they did, ignoring rows whose
unique key (:data:`modelyard.prediction_log.UNIQUE_KEY`) is already there.
SQLite: ``INSERT OR IGNORE`` with ``executemany`` (records: 50 rows per multi-row
``VALUES`` statement). PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING`` with asyncpg's
``executemany`` (a batch holds few blocks). Both keep spool order, so blocks get ids in the
order answers were recorded (per worker).

A sink raises on any failure (database down, table missing); the shipper keeps the records
in the spool and retries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from inference_server.prediction_log.records import Shipped, SpooledRecord
from modelyard.errors import ConfigurationError
from modelyard.prediction_blocks import BLOCK_COLUMNS, block_values
from modelyard.prediction_log import COLUMNS

_COLUMN_LIST = ", ".join(COLUMNS)
_BLOCK_COLUMN_LIST = ", ".join(BLOCK_COLUMNS)
_BLOCK_MARKS = ", ".join("?" for _ in BLOCK_COLUMNS)
_PG_BLOCK_MARKS = ", ".join(f"${i}" for i in range(1, len(BLOCK_COLUMNS) + 1))
_SQLITE_ROWS_PER_INSERT = 50
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
"""SQLAlchemy's storage format of DateTime on SQLite (naive UTC), so the control plane reads
what the server wrote."""


class Sink(Protocol):
    """A database the shipper writes batches into."""

    async def write(self, lines: Sequence[Shipped]) -> None:
        """Insert the blocks and records of ``lines`` (duplicates of stored keys ignored) in
        one transaction."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class SqliteSink:
    """``INSERT OR IGNORE`` into a SQLite file (the embedded default)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._inserts: dict[int, str] = {}

    def _insert(self, rows: int) -> str:
        """The statement inserting ``rows`` rows."""
        sql = self._inserts.get(rows)
        if sql is None:
            values = ", ".join(["(" + ", ".join("?" for _ in COLUMNS) + ")"] * rows)
            sql = f"INSERT OR IGNORE INTO prediction_log ({_COLUMN_LIST}) VALUES {values}"
            self._inserts[rows] = sql
        return sql

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            # NOTE: this thread is the connection's only user; the shipper thread owns it.
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            self._conn = conn
        return self._conn

    async def write(self, lines: Sequence[Shipped]) -> None:
        blocks, records = _split(lines)
        rows = [_sqlite_row(r) for r in records]
        per = _SQLITE_ROWS_PER_INSERT
        whole = len(rows) - len(rows) % per
        chunks = [
            tuple(itertools.chain.from_iterable(rows[i : i + per])) for i in range(0, whole, per)
        ]
        rest = tuple(itertools.chain.from_iterable(rows[whole:]))
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            if chunks:
                conn.executemany(self._insert(per), chunks)
            if rest:
                conn.execute(self._insert(len(rows) - whole), rest)
            if blocks:
                conn.executemany(
                    f"INSERT OR IGNORE INTO prediction_log_block ({_BLOCK_COLUMN_LIST}) "
                    f"VALUES ({_BLOCK_MARKS})",
                    [_sqlite_block(values) for values in blocks],
                )
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _sqlite_time(created: dt.datetime) -> str:
    """``created`` in :data:`_SQLITE_TIME` (naive UTC), via the C ``isoformat`` (a tenth of
    ``strftime``'s cost: this runs once per shipped row)."""
    if created.tzinfo is not dt.UTC:
        created = created.astimezone(dt.UTC)
    return created.isoformat(" ", "microseconds")[:26]


def _split(lines: Sequence[Shipped]) -> tuple[list[tuple[Any, ...]], list[SpooledRecord]]:
    """The ``prediction_log_block`` rows and the old-format records of ``lines``, in order."""
    blocks: list[tuple[Any, ...]] = []
    records: list[SpooledRecord] = []
    for line in lines:
        if line.block is not None:
            blocks.append(block_values(line.block, line.payload))
        elif line.record is not None:
            records.append(line.record)
    return blocks, records


def _sqlite_block(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """A block row with ``created_at`` in SQLAlchemy's SQLite format (column 5)."""
    return (*values[:5], _sqlite_time(values[5]), *values[6:])


def _sqlite_row(r: SpooledRecord) -> tuple[Any, ...]:
    return (
        r.request_id,
        r.row_index,
        _sqlite_time(r.created_at),
        r.model,
        r.version,
        r.variant,
        r.routing_key,
        int(r.shadow),
        r.protocol,
        r.latency_ms,
        bytes(r.inputs).decode(),
        bytes(r.outputs).decode(),
        r.worker,
    )


class PostgresSink:
    """``COPY`` into a staging table, then an idempotent insert (production)."""

    def __init__(self, url: str, schema: str | None) -> None:
        self._url = url
        self._schema = schema
        self._conn: asyncpg.Connection | None = None

    async def _connect(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            settings = {"search_path": self._schema} if self._schema else {}
            conn = await asyncpg.connect(self._url, timeout=5, server_settings=settings)
            # NOTE: owned from here, so close() releases it if the staging setup fails.
            self._conn = conn
            await conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS prediction_log_stage AS "
                f"SELECT {_COLUMN_LIST} FROM prediction_log WITH NO DATA"
            )
            await conn.execute(
                "ALTER TABLE prediction_log_stage ADD COLUMN IF NOT EXISTS ord integer"
            )
        return self._conn

    async def write(self, lines: Sequence[Shipped]) -> None:
        blocks, records = _split(lines)
        try:
            conn = await self._connect()
            async with conn.transaction():
                if records:
                    await conn.execute("TRUNCATE prediction_log_stage")
                    await conn.copy_records_to_table(
                        "prediction_log_stage",
                        records=[(*_postgres_row(r), i) for i, r in enumerate(records)],
                        columns=[*COLUMNS, "ord"],
                    )
                    await conn.execute(
                        f"INSERT INTO prediction_log ({_COLUMN_LIST}) "
                        f"SELECT {_COLUMN_LIST} FROM prediction_log_stage ORDER BY ord "
                        "ON CONFLICT DO NOTHING"
                    )
                if blocks:
                    await conn.executemany(
                        f"INSERT INTO prediction_log_block ({_BLOCK_COLUMN_LIST}) "
                        f"VALUES ({_PG_BLOCK_MARKS}) ON CONFLICT (key) DO NOTHING",
                        blocks,
                    )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self.close()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()


def _postgres_row(r: SpooledRecord) -> tuple[Any, ...]:
    return (
        r.request_id,
        r.row_index,
        r.created_at,
        r.model,
        r.version,
        r.variant,
        r.routing_key,
        r.shadow,
        r.protocol,
        r.latency_ms,
        bytes(r.inputs).decode(),
        bytes(r.outputs).decode(),
        r.worker,
    )


def open_sink(url: str, schema: str | None) -> Sink:
    """The sink for a database URL.

    Raises:
        ConfigurationError: the URL is neither SQLite nor PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigurationError(f"invalid prediction-log database URL {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigurationError("the prediction log needs a SQLite file, not :memory:")
        return SqliteSink(parsed.database)
    if backend in ("postgresql", "postgres"):
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresSink(dsn, schema)
    raise ConfigurationError(
        f"invalid prediction-log database URL {url!r}: expected sqlite or postgresql"
    )


__all__ = ["PostgresSink", "Sink", "SqliteSink", "open_sink"]
