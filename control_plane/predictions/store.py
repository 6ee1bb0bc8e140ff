"""Storage of prediction records (unpacked from blocks, read) and outcomes, on SQLAlchemy Core.

The inference servers ship the log as blocks (``prediction_log_block``,
:mod:`modelyard.prediction_blocks`); this store unpacks them into the records' table
(:meth:`PredictionStore.unpack`) and reads that. Outcomes are written here, one row per
``(request_id, row_index)``, with an upsert (``INSERT ... ON CONFLICT DO UPDATE`` on both
SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.predictions.models import (
    LabelledPrediction,
    Outcome,
    PredictionQuery,
    StoredOutcome,
)
from control_plane.predictions.tables import outcomes, prediction_log
from modelyard.prediction_blocks import (
    Unpacked,
    pending_blocks,
    prediction_log_block,
    unpack_blocks,
)
from modelyard.prediction_log import PredictionRecord, record_from_row
from modelyard.timestamps import as_utc


class PredictionStore(Protocol):
    """Where records and outcomes live. Contract (every implementation, both backends):

    - :meth:`records` returns the records matching a query, ordered by ``id`` ascending
      (arrival order), at most ``query.limit``, only ids above ``query.after_id``; ``since`` is
      inclusive and ``until`` exclusive on ``created_at``.
    - :meth:`existing_outcomes` returns which of the given keys already have an outcome.
    - :meth:`upsert_outcomes` stores each outcome under its key: a new key is inserted with
      ``writes = 1``; an existing one takes the new label/conversion/value (all three, so a
      later write that omits one clears it: last write wins), ``updated_at = at`` and
      ``writes + 1``; ``received_at`` keeps the first write's time. Keys must be distinct.
    - :meth:`logged_keys` returns which keys have at least one record in the log.
    - :meth:`labelled` returns the records matching a query, each with the outcome of its
      ``(request_id, row_index)`` or ``None``, ordered and paged like :meth:`records`.

    Blocks (read-your-writes). The readers above see only unpacked records; shipped blocks
    become records through these, each in the caller's *write* transaction:

    - :meth:`has_pending` tells (one indexed ``SELECT ... LIMIT 1``, any transaction) whether
      any block waits, including one another transaction is unpacking right now.
    - :meth:`unpack` unpacks up to ``max_blocks`` of the oldest blocks into records and
      deletes them (:func:`~modelyard.prediction_blocks.unpack_blocks`: a replayed block adds
      no record; one that cannot be decoded, that :func:`~modelyard.prediction_blocks.
      check_block` refuses or that the database refuses is deleted with an error logged and
      counted as dropped). On PostgreSQL it skips blocks another transaction holds (``SKIP
      LOCKED``), so replicas unpack in parallel; 0 blocks means nothing was left that this
      transaction could take.
    - :meth:`wait_for_claimed` makes the blocks other transactions hold this one's: it locks
      every pending block, waiting for those transactions to end (PostgreSQL ``FOR
      UPDATE``); afterwards the blocks they unpacked are committed records and the rest are
      this transaction's to :meth:`unpack`. On SQLite it does nothing (the write transaction
      already excludes every other writer).

    So a reader that first calls :meth:`unpack` until it returns 0 and then, in one more
    write transaction, :meth:`wait_for_claimed` and :meth:`unpack` until 0, sees every block
    committed before it started (``PredictionService.unpack``). :meth:`pending` counts the
    waiting blocks and the records they hold.
    """

    async def records(
        self, conn: AsyncConnection, query: PredictionQuery
    ) -> list[PredictionRecord]:
        """One page of records."""
        ...

    async def existing_outcomes(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, int]]
    ) -> set[tuple[str, int]]:
        """The keys among ``keys`` that have an outcome."""
        ...

    async def upsert_outcomes(
        self, conn: AsyncConnection, items: Sequence[Outcome], *, at: dt.datetime
    ) -> None:
        """Insert or overwrite the outcomes of ``items`` (distinct keys)."""
        ...

    async def logged_keys(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, int]]
    ) -> set[tuple[str, int]]:
        """The keys among ``keys`` that have a record in the log."""
        ...

    async def labelled(
        self, conn: AsyncConnection, query: PredictionQuery
    ) -> list[LabelledPrediction]:
        """One page of records joined with their outcomes."""
        ...

    async def has_pending(self, conn: AsyncConnection) -> bool:
        """Whether a block waits to be unpacked."""
        ...

    async def unpack(self, conn: AsyncConnection, *, max_blocks: int) -> Unpacked:
        """Unpack up to ``max_blocks`` of the oldest blocks nobody else holds; how many were
        taken, and how many of them were dropped."""
        ...

    async def wait_for_claimed(self, conn: AsyncConnection) -> None:
        """Wait for the blocks other transactions hold (PostgreSQL) and lock those left."""
        ...

    async def pending(self, conn: AsyncConnection) -> tuple[int, int]:
        """Blocks waiting to be unpacked and the records they hold."""
        ...


_KEY_CHUNK = 500
"""Keys per ``IN`` query (SQLite caps bound parameters)."""


class SqlPredictionStore:
    """:class:`PredictionStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

    async def records(
        self, conn: AsyncConnection, query: PredictionQuery
    ) -> list[PredictionRecord]:
        statement = (
            sa.select(prediction_log)
            .where(*_conditions(query))
            .order_by(prediction_log.c.id)
            .limit(query.limit)
        )
        return [record_from_row(row._asdict()) for row in await conn.execute(statement)]

    async def existing_outcomes(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, int]]
    ) -> set[tuple[str, int]]:
        return await _keys_in(conn, outcomes, keys)

    async def logged_keys(
        self, conn: AsyncConnection, keys: Sequence[tuple[str, int]]
    ) -> set[tuple[str, int]]:
        return await _keys_in(conn, prediction_log, keys)

    async def upsert_outcomes(
        self, conn: AsyncConnection, items: Sequence[Outcome], *, at: dt.datetime
    ) -> None:
        if not items:
            return
        insert: Any = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(outcomes)
        statement = insert.on_conflict_do_update(
            index_elements=[outcomes.c.request_id, outcomes.c.row_index],
            set_={
                "label": insert.excluded.label,
                "conversion": insert.excluded.conversion,
                "value": insert.excluded.value,
                "updated_at": insert.excluded.updated_at,
                "writes": outcomes.c.writes + 1,
            },
        )
        rows = [
            {
                "request_id": item.request_id,
                "row_index": item.row_index,
                "label": item.label,
                "conversion": item.conversion,
                "value": item.value,
                "received_at": at,
                "updated_at": at,
                "writes": 1,
            }
            for item in items
        ]
        await conn.execute(statement, rows)

    async def labelled(
        self, conn: AsyncConnection, query: PredictionQuery
    ) -> list[LabelledPrediction]:
        joined = prediction_log.outerjoin(
            outcomes,
            sa.and_(
                outcomes.c.request_id == prediction_log.c.request_id,
                outcomes.c.row_index == prediction_log.c.row_index,
            ),
        )
        outcome_columns = [
            c.label(f"outcome_{c.name}")
            for c in outcomes.c
            if c.name not in ("request_id", "row_index")
        ]
        statement = (
            sa.select(prediction_log, *outcome_columns)
            .select_from(joined)
            .where(*_conditions(query))
            .order_by(prediction_log.c.id)
            .limit(query.limit)
        )
        return [_labelled(row._asdict()) for row in await conn.execute(statement)]

    async def has_pending(self, conn: AsyncConnection) -> bool:
        statement = sa.select(prediction_log_block.c.id).limit(1)
        return (await conn.execute(statement)).first() is not None

    async def unpack(self, conn: AsyncConnection, *, max_blocks: int) -> Unpacked:
        return await unpack_blocks(conn, max_blocks=max_blocks)

    async def wait_for_claimed(self, conn: AsyncConnection) -> None:
        if conn.dialect.name != "postgresql":
            return
        # NOTE: READ COMMITTED: a row another transaction deleted while we waited is left out.
        statement = (
            sa.select(prediction_log_block.c.id)
            .order_by(prediction_log_block.c.id)
            .with_for_update()
        )
        await conn.execute(statement)

    async def pending(self, conn: AsyncConnection) -> tuple[int, int]:
        return await pending_blocks(conn)


async def _keys_in(
    conn: AsyncConnection, table: sa.Table, keys: Sequence[tuple[str, int]]
) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    unique = sorted(set(keys))
    for start in range(0, len(unique), _KEY_CHUNK):
        chunk = unique[start : start + _KEY_CHUNK]
        key = sa.tuple_(table.c.request_id, table.c.row_index)
        statement = sa.select(table.c.request_id, table.c.row_index).where(key.in_(chunk))
        found.update((row[0], row[1]) for row in await conn.execute(statement))
    return found


def _conditions(query: PredictionQuery) -> list[sa.ColumnElement[bool]]:
    c = prediction_log.c
    conditions: list[sa.ColumnElement[bool]] = [c.id > query.after_id]
    if query.model is not None:
        conditions.append(c.model == query.model)
    if query.version is not None:
        conditions.append(c.version == query.version)
    if query.variant is not None:
        conditions.append(c.variant == query.variant)
    if query.since is not None:
        conditions.append(c.created_at >= query.since)
    if query.until is not None:
        conditions.append(c.created_at < query.until)
    if not query.include_shadow:
        conditions.append(c.shadow == sa.false())
    return conditions


def _labelled(row: dict[str, Any]) -> LabelledPrediction:
    values = {str(key): value for key, value in row.items()}
    prefix = "outcome_"
    found = {k[len(prefix) :]: values.pop(k) for k in list(values) if k.startswith(prefix)}
    outcome = None
    if found["writes"] is not None:
        outcome = StoredOutcome(
            label=found["label"],
            conversion=None if found["conversion"] is None else bool(found["conversion"]),
            value=found["value"],
            received_at=as_utc(found["received_at"]),
            updated_at=as_utc(found["updated_at"]),
            writes=found["writes"],
        )
    return LabelledPrediction(record=record_from_row(values), outcome=outcome)


__all__ = ["PredictionStore", "SqlPredictionStore"]
