"""Persistence of feature definitions: the :class:`FeatureStore` port and its SQL adapter.

Three tables (:mod:`control_plane.features.tables`, created by this package's Alembic branch):

- ``features``: one *head* row per feature: its id, its unique name, the latest version and
  whether it is deprecated. Writers of a new version lock this row (``SELECT ... FOR UPDATE``
  on PostgreSQL; on SQLite the write transaction already holds the database write lock from
  ``BEGIN IMMEDIATE``), so concurrent updates of one feature queue up and each sees the
  previous one's version: versions are consecutive, never duplicated, never skipped.
- ``feature_versions``: one immutable row per version, keyed by ``(name, version)`` -- the
  stable key lineage refers to. The primary key is the last line of defence against two rows
  with one version. Tags are stored in order as a JSON array so a version reads back exactly.
- ``feature_tags``: ``(name, version, tag)``, so filtering a listing by tag is an indexed
  lookup rather than a scan of JSON text.

Every method takes the caller's connection: the service owns the transaction, so a version
and its audit event commit together. Names sort bytewise on both backends (``COLLATE "C"`` on
PostgreSQL; SQLite's default is binary), so pages are identical on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.features.models import FeaturePage, FeatureQuery
from control_plane.features.tables import feature_tags, feature_versions, features
from modelyard.enums import FeatureDType
from modelyard.errors import AlreadyExists, FailedPrecondition
from modelyard.models import Feature, FeatureRef
from modelyard.timestamps import as_utc


class FeatureHead(msgspec.Struct, kw_only=True, frozen=True):
    """The mutable head of a feature: which version is latest, whether it is deprecated."""

    id: str
    name: str
    latest_version: int
    deprecated: bool


class FeatureStore(Protocol):
    """Where feature definitions live. Contract (every implementation, both backends):

    - ``(name, version)`` identifies one immutable version; a stored version never changes.
    - :meth:`add_feature` stores version 1 and the head; a second feature with the same name
      raises :class:`AlreadyExists`.
    - :meth:`add_version` stores version n+1 of a feature whose head the caller read with
      ``lock=True`` in the same transaction; a duplicate ``(name, version)`` raises
      :class:`FailedPrecondition` (never a second row).
    - Reads return ``None`` / empty for unknown names and versions; the service turns that into
      :class:`~modelyard.errors.NotFound`.
    """

    async def head(
        self, conn: AsyncConnection, name: str, *, lock: bool = False
    ) -> FeatureHead | None:
        """The head of ``name``; ``lock`` holds it until the transaction ends."""
        ...

    async def add_feature(self, conn: AsyncConnection, feature: Feature) -> None:
        """Store a new feature (its head and ``feature``, which is version 1)."""
        ...

    async def add_version(self, conn: AsyncConnection, feature: Feature) -> None:
        """Store ``feature`` as the next version and make it the latest."""
        ...

    async def deprecate(
        self, conn: AsyncConnection, name: str, *, at: dt.datetime, by: str
    ) -> None:
        """Mark ``name`` deprecated (hidden from listings; versions stay readable)."""
        ...

    async def get(
        self, conn: AsyncConnection, name: str, version: int | None = None
    ) -> Feature | None:
        """Version ``version`` of ``name`` (the latest when ``None``)."""
        ...

    async def history(self, conn: AsyncConnection, name: str) -> list[Feature]:
        """Every version of ``name``, oldest first."""
        ...

    async def find(self, conn: AsyncConnection, refs: Sequence[FeatureRef]) -> list[Feature]:
        """The stored versions among ``refs`` (any order; missing ones left out)."""
        ...

    async def search(self, conn: AsyncConnection, query: FeatureQuery) -> FeaturePage:
        """The latest versions matching ``query``, one page, ordered by name."""
        ...


_PAIR_CHUNK = 500
"""(name, version) pairs per query of :meth:`SqlFeatureStore.find`."""
_VERSION_COLUMNS = [c for c in feature_versions.c if c.name != "feature_id"]
_SELECT_FEATURE = sa.select(
    feature_versions.c.feature_id.label("id"), *_VERSION_COLUMNS, features.c.deprecated
).select_from(feature_versions.join(features, features.c.id == feature_versions.c.feature_id))
_LATEST = sa.and_(
    features.c.name == feature_versions.c.name,
    features.c.latest_version == feature_versions.c.version,
)
_tags_encoder = msgspec.json.Encoder()
_tags_decoder = msgspec.json.Decoder(tuple[str, ...])


class SqlFeatureStore:
    """:class:`FeatureStore` on SQLAlchemy Core, for SQLite and PostgreSQL alike."""

    async def head(
        self, conn: AsyncConnection, name: str, *, lock: bool = False
    ) -> FeatureHead | None:
        query = sa.select(
            features.c.id, features.c.name, features.c.latest_version, features.c.deprecated
        ).where(features.c.name == name)
        if lock:
            # NOTE: rendered on PostgreSQL only; SQLite's BEGIN IMMEDIATE already serializes.
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return None if row is None else FeatureHead(**_plain(row._asdict()))

    async def add_feature(self, conn: AsyncConnection, feature: Feature) -> None:
        head = {
            "id": feature.id,
            "name": feature.name,
            "latest_version": feature.version,
            "deprecated": False,
            "created_at": feature.created_at,
            "created_by": feature.created_by,
        }
        try:
            await conn.execute(features.insert().values(**head))
        except IntegrityError:
            raise AlreadyExists(f"feature {feature.name!r} already exists") from None
        await self._insert_version(conn, feature)

    async def add_version(self, conn: AsyncConnection, feature: Feature) -> None:
        await self._insert_version(conn, feature)
        await conn.execute(
            features.update()
            .where(features.c.name == feature.name)
            .values(latest_version=feature.version)
        )

    async def _insert_version(self, conn: AsyncConnection, feature: Feature) -> None:
        values = {
            **msgspec.structs.asdict(feature),
            "feature_id": feature.id,
            "dtype": feature.dtype.value,
            "tags": _tags_encoder.encode(feature.tags).decode(),
        }
        del values["id"], values["deprecated"]
        try:
            await conn.execute(feature_versions.insert().values(**values))
        except IntegrityError:
            raise FailedPrecondition(
                f"feature {feature.name!r} version {feature.version} was written concurrently"
            ) from None
        if feature.tags:
            await conn.execute(
                feature_tags.insert(),
                [
                    {"name": feature.name, "version": feature.version, "tag": t}
                    for t in feature.tags
                ],
            )

    async def deprecate(
        self, conn: AsyncConnection, name: str, *, at: dt.datetime, by: str
    ) -> None:
        await conn.execute(
            features.update()
            .where(features.c.name == name)
            .values(deprecated=True, deprecated_at=at, deprecated_by=by)
        )

    async def get(
        self, conn: AsyncConnection, name: str, version: int | None = None
    ) -> Feature | None:
        query = _SELECT_FEATURE.where(feature_versions.c.name == name)
        if version is None:
            query = query.where(feature_versions.c.version == features.c.latest_version)
        else:
            query = query.where(feature_versions.c.version == version)
        row = (await conn.execute(query)).first()
        return None if row is None else _feature(row._asdict())

    async def history(self, conn: AsyncConnection, name: str) -> list[Feature]:
        query = _SELECT_FEATURE.where(feature_versions.c.name == name).order_by(
            feature_versions.c.version
        )
        return [_feature(row._asdict()) for row in await conn.execute(query)]

    async def find(self, conn: AsyncConnection, refs: Sequence[FeatureRef]) -> list[Feature]:
        if not refs:
            return []
        pairs = sorted({(ref.name, ref.version) for ref in refs})
        key = sa.tuple_(feature_versions.c.name, feature_versions.c.version)
        found: list[Feature] = []
        # NOTE: in chunks: one IN list of 8,000 pairs passed PostgreSQL's max_stack_depth (a
        # 500 on a registration naming that many lineage features)
        for start in range(0, len(pairs), _PAIR_CHUNK):
            query = _SELECT_FEATURE.where(key.in_(pairs[start : start + _PAIR_CHUNK]))
            found += [_feature(row._asdict()) for row in await conn.execute(query)]
        return found

    async def search(self, conn: AsyncConnection, query: FeatureQuery) -> FeaturePage:
        conditions = _conditions(query)
        joined = features.join(feature_versions, _LATEST)
        count = sa.select(sa.func.count()).select_from(joined).where(*conditions)
        total = (await conn.execute(count)).scalar_one()
        name = feature_versions.c.name
        order = name if conn.dialect.name == "sqlite" else name.collate("C")
        page = (
            _SELECT_FEATURE.where(_LATEST, *conditions)
            .order_by(order)
            .limit(query.limit)
            .offset(query.offset)
        )
        items = [_feature(row._asdict()) for row in await conn.execute(page)]
        return FeaturePage(items=items, total=total, limit=query.limit, offset=query.offset)


def _conditions(query: FeatureQuery) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses of a listing, over the latest version joined with its head."""
    conditions: list[sa.ColumnElement[bool]] = []
    if not query.include_deprecated:
        conditions.append(features.c.deprecated == sa.false())
    if query.entity is not None:
        conditions.append(feature_versions.c.entity == query.entity)
    if query.owner is not None:
        conditions.append(feature_versions.c.owner == query.owner)
    if query.prefix:
        name = feature_versions.c.name
        # NOTE: LIKE is case-insensitive on SQLite; substr keeps the match exact on both.
        conditions.append(name.startswith(query.prefix, autoescape=True))
        conditions.append(sa.func.substr(name, 1, len(query.prefix)) == query.prefix)
    if query.tag is not None:
        tagged = sa.select(feature_tags.c.tag).where(
            feature_tags.c.name == feature_versions.c.name,
            feature_tags.c.version == feature_versions.c.version,
            feature_tags.c.tag == query.tag,
        )
        conditions.append(tagged.exists())
    return conditions


def _plain(mapping: dict[str, Any]) -> dict[str, Any]:
    """Plain ``str`` keys (rows key by ``quoted_name``)."""
    return {str(key): value for key, value in mapping.items()}


def _feature(mapping: dict[str, Any]) -> Feature:
    row = _plain(mapping)
    row["dtype"] = FeatureDType(row["dtype"])
    row["tags"] = _tags_decoder.decode(row["tags"])
    row["created_at"] = as_utc(row["created_at"])
    row["deprecated"] = bool(row["deprecated"])
    return Feature(**row)


__all__ = ["FeatureHead", "FeatureStore", "SqlFeatureStore"]
