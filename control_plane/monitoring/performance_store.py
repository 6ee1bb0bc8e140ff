"""Persistence of performance specs and the metric time series (SQLAlchemy Core)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.monitoring.performance_models import MetricPoint, PerformanceSpec
from control_plane.monitoring.tables import monitoring_performance, monitoring_performance_specs
from modelyard.timestamps import as_utc

_encoder = msgspec.json.Encoder()
_spec_decoder = msgspec.json.Decoder(PerformanceSpec)


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


class SqlPerformanceStore:
    """Specs (one per model) and metric points (one per version, window and metric; a window
    tracked again replaces its points)."""

    async def put_spec(
        self, conn: AsyncConnection, model: str, spec: PerformanceSpec, now: dt.datetime
    ) -> None:
        """Store (or replace) the spec of ``model``."""
        text = _encoder.encode(spec).decode()
        insert = _insert(conn, monitoring_performance_specs).values(
            model=model, spec=text, updated_at=now
        )
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=["model"], set_={"spec": text, "updated_at": now}
            )
        )

    async def spec(self, conn: AsyncConnection, model: str) -> PerformanceSpec | None:
        """The stored spec, or ``None``."""
        c = monitoring_performance_specs.c
        text = (await conn.execute(sa.select(c.spec).where(c.model == model))).scalar()
        return None if text is None else _spec_decoder.decode(text)

    async def put_points(
        self, conn: AsyncConnection, points: list[MetricPoint], now: dt.datetime
    ) -> None:
        """Store the points of one window (replacing a previous tracking of it)."""
        for point in points:
            values = {**msgspec.structs.asdict(point), "created_at": now}
            insert = _insert(conn, monitoring_performance).values(**values)
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["model", "version", "window_start", "window_end", "metric"],
                    set_={"value": point.value, "n": point.n, "created_at": now},
                )
            )

    async def points(
        self,
        conn: AsyncConnection,
        model: str,
        version: int | None,
        metric: str | None,
        since: dt.datetime | None,
        limit: int,
    ) -> list[MetricPoint]:
        """The series, oldest window first."""
        c = monitoring_performance.c
        conditions = [c.model == model]
        if version is not None:
            conditions.append(c.version == version)
        if metric is not None:
            conditions.append(c.metric == metric)
        if since is not None:
            conditions.append(c.window_end > since)
        query = (
            sa.select(c.model, c.version, c.window_start, c.window_end, c.metric, c.value, c.n)
            .where(*conditions)
            .order_by(c.window_end, c.version, c.metric)
            .limit(limit)
        )
        return [_point(row._asdict()) for row in await conn.execute(query)]


def _point(mapping: dict[str, Any]) -> MetricPoint:
    row = {str(k): v for k, v in mapping.items()}
    row["window_start"], row["window_end"] = as_utc(row["window_start"]), as_utc(row["window_end"])
    return MetricPoint(**row)


__all__ = ["SqlPerformanceStore"]
