"""Persistence of alerts, channels and deliveries: the :class:`MonitoringStore` port and adapter.

Every method takes the caller's connection (the service owns the transaction). A delivery is
*claimed* by a conditional ``UPDATE`` that sets a lease only while none is live, the same
pattern as :mod:`control_plane.scheduler.store`, so with several control-plane replicas one
attempt is made at a time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.monitoring.models import (
    Alert,
    AlertCandidate,
    AlertState,
    AlertType,
    Channel,
    ChannelKind,
    ChannelSpec,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    FeatureDetail,
    Severity,
)
from control_plane.monitoring.tables import (
    monitoring_alerts,
    monitoring_channels,
    monitoring_deliveries,
    monitoring_delivery_attempts,
)
from modelyard.errors import AlreadyExists
from modelyard.storage import storable_text
from modelyard.timestamps import as_utc

MAX_ERROR = 2000
ALERT_LOCK_SPACE = 28026
"""The first key of the advisory locks of alert de-dup keys (the migrations' is 28025)."""
_details_encoder = msgspec.json.Encoder()
_details_decoder = msgspec.json.Decoder(tuple[FeatureDetail, ...])
_types_decoder = msgspec.json.Decoder(tuple[AlertType, ...])


class MonitoringStore(Protocol):
    """Where alerts, channels and deliveries live. Contract (both backends):

    - Alerts get increasing integer ids; :meth:`latest_alert` finds the newest one of a
      de-dup key; :meth:`absorb` folds a repeated report into it (occurrences + 1).
      :meth:`lock_key` makes the write transactions of one de-dup key take turns, so two
      reports raised at once open one alert, not two (SQLite's write transactions take turns
      already; PostgreSQL's READ COMMITTED ones did not, and opened duplicates).
    - Channel names are unique (:class:`AlreadyExists`); secrets are readable only through
      :meth:`channel_secret`.
    - :meth:`claim_deliveries` hands each due pending delivery to at most one caller until its
      lease passes; :meth:`record_attempt` stores the attempt and the new state together.
    - Times are UTC; reads return aware datetimes.
    """

    async def add_alert(
        self, conn: AsyncConnection, candidate: AlertCandidate, key: str, now: dt.datetime
    ) -> Alert: ...
    async def lock_key(self, conn: AsyncConnection, key: str) -> None: ...
    async def latest_alert(self, conn: AsyncConnection, key: str) -> Alert | None: ...
    async def absorb(
        self, conn: AsyncConnection, alert_id: int, candidate: AlertCandidate, now: dt.datetime
    ) -> None: ...
    async def get_alert(self, conn: AsyncConnection, alert_id: int) -> Alert | None: ...
    async def set_state(
        self, conn: AsyncConnection, alert_id: int, state: AlertState, by: str, now: dt.datetime
    ) -> None: ...
    async def list_alerts(
        self, conn: AsyncConnection, filters: dict[str, Any], limit: int, offset: int
    ) -> list[Alert]: ...
    async def add_channel(
        self, conn: AsyncConnection, spec: ChannelSpec, now: dt.datetime
    ) -> None: ...
    async def delete_channel(self, conn: AsyncConnection, name: str) -> bool: ...
    async def channels(self, conn: AsyncConnection) -> list[Channel]: ...
    async def channel_secret(self, conn: AsyncConnection, name: str) -> str | None: ...
    async def add_deliveries(
        self, conn: AsyncConnection, alert_id: int, channels: list[str], now: dt.datetime
    ) -> None: ...
    async def claim_deliveries(
        self, conn: AsyncConnection, now: dt.datetime, lease_s: float, limit: int
    ) -> list[Delivery]: ...
    async def record_attempt(
        self,
        conn: AsyncConnection,
        attempt: DeliveryAttempt,
        state: DeliveryState,
        next_attempt_at: dt.datetime,
    ) -> None: ...
    async def deliveries(
        self,
        conn: AsyncConnection,
        *,
        state: DeliveryState | None = None,
        alert_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]: ...


class SqlMonitoringStore:
    """:class:`MonitoringStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

    async def add_alert(
        self, conn: AsyncConnection, candidate: AlertCandidate, key: str, now: dt.datetime
    ) -> Alert:
        values = {
            **_candidate_values(candidate),
            "dedup_key": key,
            "state": AlertState.OPEN.value,
            "occurrences": 1,
            "created_at": now,
            "last_seen_at": now,
        }
        result = await conn.execute(
            monitoring_alerts.insert().values(**values).returning(monitoring_alerts.c.id)
        )
        alert = await self.get_alert(conn, int(result.scalar_one()))
        assert alert is not None  # NOTE: just inserted in this transaction
        return alert

    async def lock_key(self, conn: AsyncConnection, key: str) -> None:
        if conn.dialect.name == "postgresql":  # NOTE: held to the end of the transaction
            statement = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
            await conn.execute(statement, {"space": ALERT_LOCK_SPACE, "key": key})

    async def latest_alert(self, conn: AsyncConnection, key: str) -> Alert | None:
        query = (
            sa.select(monitoring_alerts)
            .where(monitoring_alerts.c.dedup_key == key)
            .order_by(monitoring_alerts.c.id.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
        return None if row is None else _alert(row._asdict())

    async def absorb(
        self, conn: AsyncConnection, alert_id: int, candidate: AlertCandidate, now: dt.datetime
    ) -> None:
        c = monitoring_alerts.c
        values = _candidate_values(candidate)
        del values["window_start"]
        await conn.execute(
            monitoring_alerts.update()
            .where(c.id == alert_id)
            .values(**values, occurrences=c.occurrences + 1, last_seen_at=now)
        )

    async def get_alert(self, conn: AsyncConnection, alert_id: int) -> Alert | None:
        query = sa.select(monitoring_alerts).where(monitoring_alerts.c.id == alert_id)
        row = (await conn.execute(query)).first()
        return None if row is None else _alert(row._asdict())

    async def set_state(
        self, conn: AsyncConnection, alert_id: int, state: AlertState, by: str, now: dt.datetime
    ) -> None:
        values: dict[str, Any] = {"state": state.value}
        if state is AlertState.ACKNOWLEDGED:
            values.update(acknowledged_at=now, acknowledged_by=by)
        elif state is AlertState.RESOLVED:
            values.update(resolved_at=now, resolved_by=by)
        await conn.execute(
            monitoring_alerts.update().where(monitoring_alerts.c.id == alert_id).values(**values)
        )

    async def list_alerts(
        self, conn: AsyncConnection, filters: dict[str, Any], limit: int, offset: int
    ) -> list[Alert]:
        c = monitoring_alerts.c
        conditions = [c[name] == value for name, value in filters.items() if value is not None]
        query = (
            sa.select(monitoring_alerts)
            .where(*conditions)
            .order_by(c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_alert(row._asdict()) for row in await conn.execute(query)]

    async def add_channel(self, conn: AsyncConnection, spec: ChannelSpec, now: dt.datetime) -> None:
        values = {
            "name": spec.name,
            "kind": spec.kind.value,
            "target": spec.target,
            "secret": spec.secret,
            "types": _details_encoder.encode([t.value for t in spec.types]).decode(),
            "min_severity": spec.min_severity.value,
            "enabled": spec.enabled,
            "created_at": now,
        }
        try:
            await conn.execute(monitoring_channels.insert().values(**values))
        except IntegrityError:
            raise AlreadyExists(f"notification channel {spec.name!r} already exists") from None

    async def delete_channel(self, conn: AsyncConnection, name: str) -> bool:
        result = await conn.execute(
            monitoring_channels.delete().where(monitoring_channels.c.name == name)
        )
        return bool(result.rowcount == 1)

    async def channels(self, conn: AsyncConnection) -> list[Channel]:
        query = sa.select(monitoring_channels).order_by(monitoring_channels.c.name)
        return [_channel(row._asdict()) for row in await conn.execute(query)]

    async def channel_secret(self, conn: AsyncConnection, name: str) -> str | None:
        query = sa.select(monitoring_channels.c.secret).where(monitoring_channels.c.name == name)
        return (await conn.execute(query)).scalar_one_or_none()

    async def add_deliveries(
        self, conn: AsyncConnection, alert_id: int, channels: list[str], now: dt.datetime
    ) -> None:
        if not channels:
            return
        rows = [
            {
                "alert_id": alert_id,
                "channel": name,
                "state": DeliveryState.PENDING.value,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for name in channels
        ]
        await conn.execute(monitoring_deliveries.insert(), rows)

    async def claim_deliveries(
        self, conn: AsyncConnection, now: dt.datetime, lease_s: float, limit: int
    ) -> list[Delivery]:
        c = monitoring_deliveries.c
        free = sa.or_(c.lease_until.is_(None), c.lease_until <= now)
        due = sa.and_(c.state == DeliveryState.PENDING.value, c.next_attempt_at <= now, free)
        query = sa.select(monitoring_deliveries).where(due).order_by(c.id).limit(limit)
        claimed = []
        for row in (await conn.execute(query)).all():
            mapping = row._asdict()
            result = await conn.execute(
                monitoring_deliveries.update()
                .where(c.id == mapping["id"], due)
                .values(lease_until=now + dt.timedelta(seconds=lease_s))
            )
            if result.rowcount == 1:
                claimed.append(_delivery(mapping))
        return claimed

    async def record_attempt(
        self,
        conn: AsyncConnection,
        attempt: DeliveryAttempt,
        state: DeliveryState,
        next_attempt_at: dt.datetime,
    ) -> None:
        error = None if attempt.error is None else storable_text(attempt.error, MAX_ERROR)
        await conn.execute(
            monitoring_delivery_attempts.insert().values(
                **{**msgspec.structs.asdict(attempt), "error": error}
            )
        )
        done = state is not DeliveryState.PENDING
        await conn.execute(
            monitoring_deliveries.update()
            .where(monitoring_deliveries.c.id == attempt.delivery_id)
            .values(
                state=state.value,
                attempts=attempt.attempt,
                next_attempt_at=next_attempt_at,
                lease_until=None,
                last_error=error,
                finished_at=attempt.at if done else None,
            )
        )

    async def deliveries(
        self,
        conn: AsyncConnection,
        *,
        state: DeliveryState | None = None,
        alert_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        c = monitoring_deliveries.c
        conditions = []
        if state is not None:
            conditions.append(c.state == state.value)
        if alert_id is not None:
            conditions.append(c.alert_id == alert_id)
        query = sa.select(monitoring_deliveries).where(*conditions).order_by(c.id).limit(limit)
        items = [_delivery(row._asdict()) for row in await conn.execute(query)]
        if not items:
            return items
        a = monitoring_delivery_attempts.c
        attempts = sa.select(monitoring_delivery_attempts).where(
            a.delivery_id.in_([d.id for d in items])
        )
        history: dict[int, list[DeliveryAttempt]] = {}
        for row in await conn.execute(attempts.order_by(a.delivery_id, a.attempt)):
            record = _plain(row._asdict())
            record["at"] = as_utc(record["at"])
            record["ok"] = bool(record["ok"])
            history.setdefault(record["delivery_id"], []).append(DeliveryAttempt(**record))
        return [msgspec.structs.replace(d, history=tuple(history.get(d.id, []))) for d in items]


def _candidate_values(candidate: AlertCandidate) -> dict[str, Any]:
    return {
        "type": candidate.type.value,
        "severity": candidate.severity.value,
        "model": candidate.model,
        "version": candidate.version,
        "window_start": candidate.window_start,
        "window_end": candidate.window_end,
        "summary": candidate.summary,
        "details": _details_encoder.encode(candidate.details).decode(),
    }


def _plain(mapping: dict[str, Any]) -> dict[str, Any]:
    return {str(key): value for key, value in mapping.items()}


_ALERT_TIMES = (
    "window_start",
    "window_end",
    "created_at",
    "last_seen_at",
    "acknowledged_at",
    "resolved_at",
)


def _alert(mapping: dict[str, Any]) -> Alert:
    row = _plain(mapping)
    for key in _ALERT_TIMES:
        row[key] = as_utc(row[key])
    row["type"] = AlertType(row["type"])
    row["severity"] = Severity(row["severity"])
    row["state"] = AlertState(row["state"])
    row["details"] = _details_decoder.decode(row["details"])
    return Alert(**row)


def _channel(mapping: dict[str, Any]) -> Channel:
    row = _plain(mapping)
    return Channel(
        name=row["name"],
        kind=ChannelKind(row["kind"]),
        target=row["target"],
        types=_types_decoder.decode(row["types"]),
        min_severity=Severity(row["min_severity"]),
        enabled=bool(row["enabled"]),
        signed=bool(row["secret"]),
        created_at=as_utc(row["created_at"]),
    )


def _delivery(mapping: dict[str, Any]) -> Delivery:
    row = _plain(mapping)
    del row["lease_until"]
    for key in ("next_attempt_at", "created_at", "finished_at"):
        row[key] = as_utc(row[key])
    row["state"] = DeliveryState(row["state"])
    return Delivery(**row)


__all__ = ["MonitoringStore", "SqlMonitoringStore"]
