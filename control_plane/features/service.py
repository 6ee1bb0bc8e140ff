"""The feature store's rules, behind both the REST controller and the CLI.

- Creating a feature assigns a fresh id (uuid4 hex) and version 1; a name is taken forever
  (deprecated names too), because ``(name, version)`` is the key lineage refers to.
- Updating writes version n+1 under the head row's lock, inside the same transaction that
  reads n, so concurrent updates get distinct consecutive versions. Earlier versions are
  never touched. A deprecated feature takes no new versions.
- Deprecating hides a feature from listings (unless ``include_deprecated``); every version
  stays readable by name and version and through :meth:`FeatureService.resolve`.
- Every change writes an audit event in its own transaction, so both commit or neither does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from control_plane.features.models import (
    FeatureDefinition,
    FeaturePage,
    FeatureQuery,
    FeatureUpdate,
    validated,
)
from modelyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelyard.models import Feature, FeatureRef
from modelyard.storage.audit import AuditEvent, AuditLog

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.features.store import FeatureStore
    from modelyard.storage import Database

MAX_PAGE = 1000
_ENTITY_KIND = "feature"


class FeatureService:
    """Versioned feature definitions.

    Args:
        database: the platform database (transactions).
        store: where definitions live.
        audit_log: where changes are recorded.
    """

    def __init__(self, database: Database, store: FeatureStore, audit_log: AuditLog) -> None:
        self._database = database
        self._store = store
        self._audit_log = audit_log

    async def create_feature(self, definition: FeatureDefinition, *, actor: str) -> Feature:
        """Store a new feature as version 1 with a fresh id.

        Raises:
            InvalidArgument: the definition is incomplete or invalid (missing fields named).
            AlreadyExists: a feature of that name exists (deprecated or not).
        """
        definition = validated(definition)
        _check_actor(actor)
        async with self._database.write() as conn:
            if await self._store.head(conn, definition.name) is not None:
                raise AlreadyExists(
                    f"feature {definition.name!r} already exists; "
                    f"PUT /v1/features/{definition.name} adds a version"
                )
            feature = _version_of(definition, definition.name, uuid.uuid4().hex, 1, actor)
            await self._store.add_feature(conn, feature)
            await self._audit(conn, actor, "create", feature, to_state="active")
        return feature

    async def update_feature(self, name: str, update: FeatureUpdate, *, actor: str) -> Feature:
        """Store ``update`` as the next version of ``name``; earlier versions stay as they are.

        Raises:
            InvalidArgument: the definition is incomplete or invalid (missing fields named).
            NotFound: no feature is called ``name``.
            FailedPrecondition: the feature is deprecated.
        """
        update = validated(update)
        _check_actor(actor)
        async with self._database.write() as conn:
            head = await self._store.head(conn, name, lock=True)
            if head is None:
                raise NotFound("feature", name)
            if head.deprecated:
                raise FailedPrecondition(f"feature {name!r} is deprecated and takes no versions")
            feature = _version_of(update, head.name, head.id, head.latest_version + 1, actor)
            await self._store.add_version(conn, feature)
            await self._audit(conn, actor, "update", feature)
        return feature

    async def get_feature(self, name: str, version: int | None = None) -> Feature:
        """The latest version of ``name``, or exactly version ``version`` as it was stored.

        Raises:
            NotFound: the feature or that version of it does not exist.
        """
        async with self._database.read() as conn:
            feature = await self._store.get(conn, name, version)
        if feature is None:
            if version is not None and await self._exists(name):
                raise NotFound("feature", name, version=version)
            raise NotFound("feature", name)
        return feature

    async def get_history(self, name: str) -> list[Feature]:
        """Every version of ``name``, oldest first.

        Raises:
            NotFound: no feature is called ``name``.
        """
        async with self._database.read() as conn:
            versions = await self._store.history(conn, name)
        if not versions:
            raise NotFound("feature", name)
        return versions

    async def list_features(
        self,
        *,
        entity: str | None = None,
        tag: str | None = None,
        owner: str | None = None,
        prefix: str | None = None,
        include_deprecated: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> FeaturePage:
        """The latest version of each feature matching every given filter, ordered by name.

        Raises:
            InvalidArgument: ``limit`` outside 1..1000 or a negative ``offset``.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        if offset < 0:
            raise InvalidArgument(f"offset must not be negative, got {offset}")
        query = FeatureQuery(
            entity=entity,
            tag=tag,
            owner=owner,
            prefix=prefix,
            include_deprecated=include_deprecated,
            limit=limit,
            offset=offset,
        )
        async with self._database.read() as conn:
            return await self._store.search(conn, query)

    async def deprecate_feature(self, name: str, *, actor: str, reason: str = "") -> Feature:
        """Hide ``name`` from listings; all its versions stay readable. Idempotent.

        Returns:
            The latest version, marked deprecated.

        Raises:
            NotFound: no feature is called ``name``.
        """
        _check_actor(actor)
        async with self._database.write() as conn:
            head = await self._store.head(conn, name, lock=True)
            if head is None:
                raise NotFound("feature", name)
            if not head.deprecated:
                await self._store.deprecate(conn, name, at=_now(), by=actor)
            feature = await self._store.get(conn, name)
            assert feature is not None  # NOTE: the locked head names an existing version.
            if not head.deprecated:
                await self._audit(conn, actor, "deprecate", feature, "active", "deprecated", reason)
        return feature

    async def resolve(self, refs: Sequence[FeatureRef]) -> list[Feature]:
        """The stored versions ``refs`` name, in the same order (lineage validation).

        Deprecated features resolve like any other: deprecation never breaks lineage.

        Raises:
            NotFound: a ``(name, version)`` pair is not stored (the first one is named).
        """
        async with self._database.read() as conn:
            found = await self._store.find(conn, refs)
        by_key = {(feature.name, feature.version): feature for feature in found}
        for ref in refs:
            if (ref.name, ref.version) not in by_key:
                raise NotFound("feature", ref.name, version=ref.version)
        return [by_key[(ref.name, ref.version)] for ref in refs]

    async def _exists(self, name: str) -> bool:
        async with self._database.read() as conn:
            return await self._store.head(conn, name) is not None

    async def _audit(
        self,
        conn: AsyncConnection,
        actor: str,
        action: str,
        feature: Feature,
        from_state: str | None = None,
        to_state: str | None = None,
        reason: str = "",
    ) -> None:
        event = AuditEvent(
            actor=actor,
            action=action,
            entity_kind=_ENTITY_KIND,
            entity=f"{feature.name}/{feature.version}",
            from_state=from_state,
            to_state=to_state,
            reason=reason,
        )
        await self._audit_log.record(conn, event)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_actor(actor: str) -> None:
    if not actor.strip() or len(actor) > 200:
        raise InvalidArgument(f"actor must be 1..200 characters and not blank, got {actor!r}")


def _version_of(
    definition: FeatureDefinition | FeatureUpdate,
    name: str,
    feature_id: str,
    version: int,
    actor: str,
) -> Feature:
    """The stored form of ``definition`` as version ``version`` of feature ``feature_id``."""
    fields = msgspec.structs.asdict(definition)
    fields.pop("name", None)
    return Feature(
        id=feature_id,
        name=name,
        version=version,
        created_at=_now(),
        created_by=actor,
        **fields,
    )


__all__ = ["MAX_PAGE", "FeatureService"]
