"""The prediction log's rules, behind the REST controller, the CLI and the other features.

A/B testing (``control_plane.abtest``) and monitoring call :class:`PredictionService` — never
the store — for the records and their outcomes:

- :meth:`PredictionService.labelled` (records joined with outcomes, one page) and
  :meth:`PredictionService.iter_labelled` (every page) are the read API: a variant's metrics
  come only from records carrying that variant, so filter by ``variant`` (property 20).
- :meth:`PredictionService.list_predictions` is the REST listing (cursor pagination).
- :meth:`PredictionService.record_feedback` stores outcomes: last write wins, duplicates and
  outcomes that arrive before their record are counted, never refused.

Times are UTC; ``since`` is inclusive, ``until`` exclusive. Naive datetimes are taken as UTC.

Read-your-writes. The inference servers ship the log as blocks (``prediction_log_block``,
:mod:`modelyard.prediction_blocks`); records exist once a block is unpacked. Every read here
first calls :meth:`PredictionService.unpack` (``wait=True``), so it sees every block shipped
before it started: one indexed ``SELECT ... LIMIT 1`` when nothing waits; else write
transactions of :data:`BLOCKS_PER_TRANSACTION` blocks until none is left that another
replica is not unpacking, then one transaction that waits for those replicas (PostgreSQL row
locks; the store's contract says how) and unpacks whatever they left. The control plane's
:class:`~control_plane.predictions.unpacker.BlockUnpacker` task calls it every
``control_plane.unpack_interval_s`` with ``wait=False``, so records appear without a read.
A read returns once unpacking catches up, so it assumes unpacking outpaces shipping
(benchmarks/RESULTS.md, "Prediction-log unpacking").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from control_plane.predictions.models import (
    FeedbackResult,
    LabelledPrediction,
    Outcome,
    PredictionPage,
    PredictionQuery,
    UnpackResult,
    check_outcomes,
)
from modelyard.errors import InvalidArgument
from modelyard.prediction_blocks import Unpacked
from modelyard.prediction_log import VARIANTS
from modelyard.timestamps import given_utc

if TYPE_CHECKING:
    from control_plane.predictions.store import PredictionStore
    from modelyard.storage import Database

MAX_PAGE = 1000

BLOCKS_PER_TRANSACTION = 100
"""Blocks one unpacking transaction takes (short transactions: the servers keep writing)."""


class PredictionService:
    """Prediction records and their outcomes.

    Args:
        database: the platform database (the servers write the records into the same one).
        store: where records are read and outcomes kept.
    """

    def __init__(self, database: Database, store: PredictionStore) -> None:
        self._database = database
        self._store = store
        self.unpacked_blocks = 0
        """Blocks this process has unpacked so far (every caller of :meth:`unpack`)."""
        self.dropped_blocks = 0
        """Blocks this process deleted without records (damaged or refused; each logged)."""

    async def unpack(self, *, wait: bool = True) -> int:
        """Unpack the shipped blocks into records (see the module docstring).

        Args:
            wait: also wait for blocks other transactions (replicas) are unpacking, so every
                block committed before the call is a record when it returns (reads); without
                it, blocks another replica holds are left to it (the background task).

        Returns:
            How many blocks this call unpacked.
        """
        done = await self._unpack(wait=wait)
        return done.blocks - done.dropped

    async def _unpack(self, *, wait: bool) -> Unpacked:
        """:meth:`unpack`: the blocks this call took and how many of them it dropped."""
        async with self._database.read() as conn:
            if not await self._store.has_pending(conn):
                return Unpacked(0, 0)
        passes: list[Unpacked] = []
        while True:
            async with self._database.write() as conn:
                done = await self._store.unpack(conn, max_blocks=BLOCKS_PER_TRANSACTION)
            passes.append(self._counted(done))
            if not done.blocks:
                break
        if wait and not self._database.is_sqlite:
            waited: list[Unpacked] = []
            async with self._database.write() as conn:
                await self._store.wait_for_claimed(conn)
                while True:
                    done = await self._store.unpack(conn, max_blocks=BLOCKS_PER_TRANSACTION)
                    if not done.blocks:
                        break
                    waited.append(done)
            passes += [self._counted(done) for done in waited]  # NOTE: once committed
        return Unpacked(sum(p.blocks for p in passes), sum(p.dropped for p in passes))

    def _counted(self, done: Unpacked) -> Unpacked:
        """Count one committed unpack (this process's totals); ``done`` as it was."""
        self.unpacked_blocks += done.blocks - done.dropped
        self.dropped_blocks += done.dropped
        return done

    async def unpack_now(self) -> UnpackResult:
        """:meth:`unpack` (waiting for other replicas), and what still waits afterwards."""
        done = await self._unpack(wait=True)
        blocks, records = await self.pending()
        return UnpackResult(
            unpacked_blocks=done.blocks - done.dropped,
            dropped_blocks=done.dropped,
            pending_blocks=blocks,
            pending_records=records,
        )

    async def pending(self) -> tuple[int, int]:
        """Blocks waiting to be unpacked and the records they hold."""
        async with self._database.read() as conn:
            return await self._store.pending(conn)

    async def list_predictions(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        variant: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        cursor: int | None = None,
    ) -> PredictionPage:
        """One page of records (shadow copies included), oldest first by arrival in the log.

        Args:
            model: only this model.
            version: only this version (needs ``model``).
            variant: ``control``, ``treatment``, ``shadow`` or ``none``.
            since: created at or after this time.
            until: created before this time.
            limit: page size, 1..1000.
            cursor: the previous page's ``next_cursor``.

        Raises:
            InvalidArgument: a bad limit, cursor, variant, a version without a model, or
                ``since`` not before ``until``.
        """
        query = _query(model, version, variant, since, until, limit, cursor, include_shadow=True)
        await self.unpack()
        async with self._database.read() as conn:
            items = await self._store.records(conn, query)
        next_cursor = items[-1].id if len(items) == limit and items else None
        return PredictionPage(items=items, next_cursor=next_cursor)

    async def labelled(
        self,
        model: str,
        version: int | None = None,
        variant: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        *,
        limit: int = MAX_PAGE,
        cursor: int | None = None,
        include_shadow: bool = False,
    ) -> list[LabelledPrediction]:
        """Records of ``model`` joined with their outcomes (``outcome`` None when none yet).

        The read API of A/B testing and monitoring. Ordered by record ``id``; pass the last
        item's ``record.id`` as ``cursor`` for the next page (fewer than ``limit`` items: the
        last page), or use :meth:`iter_labelled`. Shadow copies are left out unless
        ``include_shadow`` (their answers were never returned, so outcomes describe the
        served answer, not theirs).

        Raises:
            InvalidArgument: as :meth:`list_predictions`.
        """
        query = _query(model, version, variant, since, until, limit, cursor, include_shadow)
        await self.unpack()
        async with self._database.read() as conn:
            return await self._store.labelled(conn, query)

    async def iter_labelled(
        self,
        model: str,
        version: int | None = None,
        variant: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        *,
        include_shadow: bool = False,
    ) -> AsyncIterator[LabelledPrediction]:
        """Every record of :meth:`labelled`'s query, page by page.

        Raises:
            InvalidArgument: as :meth:`list_predictions`.
        """
        cursor: int | None = None
        while True:
            page = await self.labelled(
                model,
                version,
                variant,
                since,
                until,
                cursor=cursor,
                include_shadow=include_shadow,
            )
            for item in page:
                yield item
            if len(page) < MAX_PAGE:
                return
            cursor = page[-1].record.id

    async def record_feedback(self, items: Sequence[Outcome]) -> FeedbackResult:
        """Store outcomes; within the batch and across calls the last write of a key wins.

        Raises:
            InvalidArgument: an outcome carries no label, conversion or value, or too many.
        """
        check_outcomes(list(items))
        latest: dict[tuple[str, int], Outcome] = {}
        for item in items:
            latest[(item.request_id, item.row_index)] = item
        keys = list(latest)
        await self.unpack()
        async with self._database.write() as conn:
            existing = await self._store.existing_outcomes(conn, keys)
            logged = await self._store.logged_keys(conn, keys)
            await self._store.upsert_outcomes(conn, list(latest.values()), at=_now())
        return FeedbackResult(
            accepted=len(latest),
            replaced=len(existing),
            repeated_in_batch=len(items) - len(latest),
            unmatched=len(keys) - len(logged),
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _query(
    model: str | None,
    version: int | None,
    variant: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    cursor: int | None,
    include_shadow: bool,
) -> PredictionQuery:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if cursor is not None and cursor < 0:
        raise InvalidArgument(f"cursor must not be negative, got {cursor}")
    if variant is not None and variant not in VARIANTS:
        raise InvalidArgument(f"unknown variant {variant!r}; expected one of {list(VARIANTS)}")
    if version is not None and model is None:
        raise InvalidArgument("a version filter needs the model (?model=NAME&version=N)")
    since, until = given_utc("since", since), given_utc("until", until)
    if since is not None and until is not None and since >= until:
        raise InvalidArgument(f"since ({since.isoformat()}) must be before until")
    return PredictionQuery(
        model=model,
        version=version,
        variant=variant,
        since=since,
        until=until,
        after_id=cursor or 0,
        limit=limit,
        include_shadow=include_shadow,
    )


__all__ = ["BLOCKS_PER_TRANSACTION", "MAX_PAGE", "PredictionService"]
