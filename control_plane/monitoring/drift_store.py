"""Persistence of reference profiles, drift policies and drift reports (SQLAlchemy Core).

Profiles, policies and results are stored as JSON text (msgspec), so the shapes of
:mod:`modelyard.sketches` and :mod:`control_plane.drift` read back exactly; the merged window
sketches are kept with each report for its charts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.drift import DatasetDriftResult, DriftPolicy
from control_plane.monitoring.drift_models import DriftReport
from control_plane.monitoring.tables import (
    monitoring_drift_policies,
    monitoring_drift_reports,
    monitoring_references,
)
from modelyard.sketches import ReferenceProfile, WindowSketches, decode_profile, encode
from modelyard.timestamps import as_utc

_encoder = msgspec.json.Encoder()
_result_decoder = msgspec.json.Decoder(DatasetDriftResult)
_policy_decoder = msgspec.json.Decoder(DriftPolicy)
_window_decoder = msgspec.json.Decoder(WindowSketches)
_REPORT_COLUMNS = [c for c in monitoring_drift_reports.c if c.name != "window"]


def _upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


class SqlDriftStore:
    """References (one per model version), policies (one per model) and reports."""

    async def put_reference(
        self,
        conn: AsyncConnection,
        model: str,
        version: int,
        profile: ReferenceProfile,
        now: dt.datetime,
    ) -> None:
        """Store (or replace) the reference profile of ``model`` ``version``."""
        values = {
            "model": model,
            "version": version,
            "profile": encode(profile).decode(),
            "created_at": now,
        }
        insert = _upsert(conn, monitoring_references).values(**values)
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=["model", "version"],
                set_={"profile": values["profile"], "created_at": now},
            )
        )

    async def reference(
        self, conn: AsyncConnection, model: str, version: int
    ) -> ReferenceProfile | None:
        """The stored profile, or ``None``."""
        c = monitoring_references.c
        query = sa.select(c.profile).where(c.model == model, c.version == version)
        text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else decode_profile(text.encode())

    async def referenced_versions(self, conn: AsyncConnection) -> list[tuple[str, int]]:
        """Every (model, version) with a reference, in order."""
        c = monitoring_references.c
        query = sa.select(c.model, c.version).order_by(c.model, c.version)
        return [(row.model, row.version) for row in await conn.execute(query)]

    async def put_policy(
        self, conn: AsyncConnection, model: str, policy: DriftPolicy, now: dt.datetime
    ) -> None:
        """Store (or replace) the drift policy of ``model``."""
        text = _encoder.encode(policy).decode()
        insert = _upsert(conn, monitoring_drift_policies).values(
            model=model, policy=text, updated_at=now
        )
        await conn.execute(
            insert.on_conflict_do_update(
                index_elements=["model"], set_={"policy": text, "updated_at": now}
            )
        )

    async def policy(self, conn: AsyncConnection, model: str) -> DriftPolicy | None:
        """The stored policy, or ``None`` (Evidently's defaults apply)."""
        c = monitoring_drift_policies.c
        text = (await conn.execute(sa.select(c.policy).where(c.model == model))).scalar()
        return None if text is None else _policy_decoder.decode(text)

    async def add_report(
        self, conn: AsyncConnection, report: DriftReport, window: WindowSketches
    ) -> int:
        """Store a report (its ``id`` is ignored) with the merged sketches; the new id."""
        values = msgspec.structs.asdict(report)
        del values["id"]
        values["result"] = _encoder.encode(report.result).decode()
        values["window"] = encode(window).decode()
        result = await conn.execute(
            monitoring_drift_reports.insert()
            .values(**values)
            .returning(monitoring_drift_reports.c.id)
        )
        return int(result.scalar_one())

    async def report(self, conn: AsyncConnection, report_id: int) -> DriftReport | None:
        """One report, or ``None``."""
        query = sa.select(*_REPORT_COLUMNS).where(monitoring_drift_reports.c.id == report_id)
        row = (await conn.execute(query)).first()
        return None if row is None else _report(row._asdict())

    async def report_window(self, conn: AsyncConnection, report_id: int) -> WindowSketches | None:
        """The merged sketches a report was computed from."""
        c = monitoring_drift_reports.c
        text = (await conn.execute(sa.select(c.window).where(c.id == report_id))).scalar()
        return None if text is None else _window_decoder.decode(text)

    async def reports(
        self, conn: AsyncConnection, model: str | None, version: int | None, limit: int
    ) -> list[DriftReport]:
        """Reports, newest first."""
        c = monitoring_drift_reports.c
        conditions = []
        if model is not None:
            conditions.append(c.model == model)
        if version is not None:
            conditions.append(c.version == version)
        query = sa.select(*_REPORT_COLUMNS).where(*conditions).order_by(c.id.desc()).limit(limit)
        return [_report(row._asdict()) for row in await conn.execute(query)]


def _report(mapping: dict[str, Any]) -> DriftReport:
    row = {str(k): v for k, v in mapping.items()}
    for key in ("window_start", "window_end", "created_at"):
        row[key] = as_utc(row[key])
    row["drifted"] = bool(row["drifted"])
    row["result"] = _result_decoder.decode(row["result"])
    return DriftReport(**row)


__all__ = ["SqlDriftStore"]
