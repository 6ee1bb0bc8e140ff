"""The audit log: an append-only record of every change made through the control plane.

Writers pass their open transaction so an event commits or rolls back with the change it
describes; an audit entry for a change that did not happen cannot exist.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.storage.database import Database

metadata = sa.MetaData()

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("entity_kind", sa.String(100), nullable=False),
    sa.Column("entity", sa.String(300), nullable=False),
    sa.Column("from_state", sa.String(100), nullable=True),
    sa.Column("to_state", sa.String(100), nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
)


class AuditEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One recorded change.

    Attributes:
        actor: the principal who made the change.
        action: what was done (``register``, ``transition``, ``approve``, ...).
        entity_kind: the kind of entity (``model_version``, ``feature``, ...).
        entity: which one (``churn/3``).
        from_state: state before, if the change moved a state.
        to_state: state after.
        reason: the free-text reason the actor gave.
        occurred_at: when (UTC); set by :meth:`AuditLog.record` when omitted.
        id: sequence number, assigned on write.
    """

    actor: str
    action: str
    entity_kind: str
    entity: str
    from_state: str | None = None
    to_state: str | None = None
    reason: str = ""
    occurred_at: dt.datetime | None = None
    id: int | None = None


class AuditLog:
    """Append and read audit events.

    Args:
        database: the platform database.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, conn: AsyncConnection, event: AuditEvent) -> AuditEvent:
        """Append ``event`` inside the caller's transaction and return it with id and time."""
        occurred_at = event.occurred_at or dt.datetime.now(dt.UTC)
        values = msgspec.structs.asdict(event) | {"occurred_at": occurred_at}
        values.pop("id")
        result = await conn.execute(audit_events.insert().values(**values))
        (new_id,) = result.inserted_primary_key or (None,)
        return msgspec.structs.replace(event, id=new_id, occurred_at=occurred_at)

    async def list(
        self,
        *,
        entity_kind: str | None = None,
        entity: str | None = None,
        actor: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Events matching every given filter, oldest first."""
        query = sa.select(audit_events).order_by(audit_events.c.id).limit(limit).offset(offset)
        if entity_kind is not None:
            query = query.where(audit_events.c.entity_kind == entity_kind)
        if entity is not None:
            query = query.where(audit_events.c.entity == entity)
        if actor is not None:
            query = query.where(audit_events.c.actor == actor)
        async with self._database.read() as conn:
            rows = (await conn.execute(query)).all()
        return [msgspec.convert(_as_utc(row._asdict()), AuditEvent) for row in rows]


def _as_utc(mapping: dict[str, object]) -> dict[str, object]:
    """Plain-``str`` keys, and UTC times (SQLite returns naive datetimes; all are UTC)."""
    row = {str(key): value for key, value in mapping.items()}
    occurred_at = row["occurred_at"]
    if isinstance(occurred_at, dt.datetime) and occurred_at.tzinfo is None:
        row["occurred_at"] = occurred_at.replace(tzinfo=dt.UTC)
    return row
