"""Persistence of A/B tests: the :class:`ABTestStore` port and its SQL adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from control_plane.abtesting.models import ABTest, TestDefinition, TestStatus
from control_plane.abtesting.tables import ab_tests
from modelyard.errors import AlreadyExists
from modelyard.timestamps import as_utc

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TestDefinition)


class ABTestStore(Protocol):
    """Where tests live. Contract (every implementation, both backends):

    - :meth:`insert` stores a new running test; a second running test of the same model
      raises :class:`AlreadyExists` (the database's partial unique index decides, so two
      concurrent creations cannot both succeed).
    - :meth:`update` replaces the definition, status, end time and winner of a stored test
      (the id, model and creation fields never change), phase start included.
    - Reads return ``None`` / empty for unknown ids; the service turns that into
      :class:`~modelyard.errors.NotFound`. Listings are newest first.
    """

    async def insert(self, conn: AsyncConnection, test: ABTest) -> None:
        """Store a new test."""
        ...

    async def update(self, conn: AsyncConnection, test: ABTest) -> None:
        """Store the mutable fields of ``test``."""
        ...

    async def get(self, conn: AsyncConnection, test_id: str) -> ABTest | None:
        """The test ``test_id``."""
        ...

    async def list(
        self, conn: AsyncConnection, *, model: str | None = None, status: TestStatus | None = None
    ) -> list[ABTest]:
        """Tests filtered by model and status, newest first."""
        ...


def _row(test: ABTest) -> dict[str, Any]:
    return {
        "status": test.status.value,
        "definition": _encoder.encode(test.definition).decode(),
        "phase_started_at": test.phase_started_at,
        "ended_at": test.ended_at,
        "winner": test.winner,
    }


def _test(row: sa.Row[Any]) -> ABTest:
    return ABTest(
        id=row.id,
        definition=_decoder.decode(row.definition),
        status=TestStatus(row.status),
        created_at=as_utc(row.created_at),
        created_by=row.created_by,
        phase_started_at=as_utc(row.phase_started_at),
        ended_at=None if row.ended_at is None else as_utc(row.ended_at),
        winner=row.winner,
    )


class SqlABTestStore:
    """:class:`ABTestStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

    async def insert(self, conn: AsyncConnection, test: ABTest) -> None:
        values = _row(test) | {
            "id": test.id,
            "model": test.model,
            "created_at": test.created_at,
            "created_by": test.created_by,
        }
        try:
            async with conn.begin_nested():
                await conn.execute(sa.insert(ab_tests).values(values))
        except IntegrityError:
            raise AlreadyExists(f"model {test.model!r} already has a running A/B test") from None

    async def update(self, conn: AsyncConnection, test: ABTest) -> None:
        await conn.execute(sa.update(ab_tests).where(ab_tests.c.id == test.id).values(_row(test)))

    async def get(self, conn: AsyncConnection, test_id: str) -> ABTest | None:
        row = (await conn.execute(sa.select(ab_tests).where(ab_tests.c.id == test_id))).first()
        return None if row is None else _test(row)

    async def list(
        self, conn: AsyncConnection, *, model: str | None = None, status: TestStatus | None = None
    ) -> list[ABTest]:
        query = sa.select(ab_tests).order_by(ab_tests.c.created_at.desc(), ab_tests.c.id)
        if model is not None:
            query = query.where(ab_tests.c.model == model)
        if status is not None:
            query = query.where(ab_tests.c.status == status.value)
        return [_test(row) for row in await conn.execute(query)]
