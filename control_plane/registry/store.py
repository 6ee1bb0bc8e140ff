"""SQL of the registry, one implementation for SQLite and PostgreSQL (SQLAlchemy Core).

Every method takes the caller's connection, so the service composes several of them in one
transaction (register = allocate + insert version + insert card + insert features + audit).
Structured columns (signature, lineage, card, tags) are msgspec JSON; the lineage keys that are
queried (run id, dataset, features) also have columns of their own.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from control_plane.registry.models import CardReview, CardRevision, ModelSummary, ModelVersionRef
from control_plane.registry.rows import VERSION_QUERY, encode, registered, utc, version_row
from control_plane.registry.tables import (
    card_reviews,
    model_cards,
    model_version_features,
    model_versions,
    registered_models,
)
from modelyard.enums import CardStatus, ModelStage
from modelyard.errors import NotFound
from modelyard.models import ModelCard, RegisteredModel


class RegistryStore:
    """Queries and updates of the registry tables inside a caller's transaction.

    Args:
        dialect: ``sqlite`` or ``postgresql`` (row locks are taken on PostgreSQL only; SQLite
            write transactions hold the database lock from their first statement).
    """

    def __init__(self, dialect: str) -> None:
        self._dialect = dialect

    async def allocate_version(self, conn: AsyncConnection, name: str) -> int:
        """Hand out the next version of ``name`` (1 for a new name), unique under concurrency."""
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        await conn.execute(
            insert(registered_models)
            .values(name=name, latest_version=0, created_at=dt.datetime.now(dt.UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        result = await conn.execute(
            registered_models.update()
            .where(registered_models.c.name == name)
            .values(latest_version=registered_models.c.latest_version + 1)
            .returning(registered_models.c.latest_version)
        )
        return int(result.scalar_one())

    async def lock_model(self, conn: AsyncConnection, name: str) -> None:
        """Serialise changes to one model's versions until the transaction ends.

        Raises:
            NotFound: no model has that name.
        """
        query = sa.select(registered_models.c.name).where(registered_models.c.name == name)
        if self._dialect == "postgresql":
            query = query.with_for_update()
        if (await conn.execute(query)).first() is None:
            raise NotFound("model", name)

    async def insert_version(self, conn: AsyncConnection, model: RegisteredModel) -> None:
        """Insert one version row (its card revision is written by :meth:`insert_card`)."""
        await conn.execute(model_versions.insert().values(**version_row(model)))

    async def insert_features(
        self, conn: AsyncConnection, name: str, version: int, features: list[tuple[str, int]]
    ) -> None:
        """Record the (feature, version) pairs a model version was built from."""
        if features:
            rows = [
                {"name": name, "version": version, "feature_name": f, "feature_version": v}
                for f, v in sorted(set(features))
            ]
            await conn.execute(model_version_features.insert(), rows)

    async def get(self, conn: AsyncConnection, name: str, version: int) -> RegisteredModel:
        """One version with its current card.

        Raises:
            NotFound: no such version.
        """
        query = VERSION_QUERY.where(
            model_versions.c.name == name, model_versions.c.version == version
        )
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound("model", name, version=version)
        return registered(row)

    async def list_versions(
        self,
        conn: AsyncConnection,
        *,
        name: str | None = None,
        stage: ModelStage | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[RegisteredModel]:
        """Versions matching every given filter, by name then version."""
        query = VERSION_QUERY.order_by(model_versions.c.name, model_versions.c.version)
        if name is not None:
            query = query.where(model_versions.c.name == name)
        if stage is not None:
            query = query.where(model_versions.c.stage == stage.value)
        rows = (await conn.execute(query.limit(limit).offset(offset))).all()
        return [registered(row) for row in rows]

    async def latest_version(self, conn: AsyncConnection, name: str) -> int | None:
        """The highest registered version of ``name``, or None."""
        query = sa.select(sa.func.max(model_versions.c.version)).where(
            model_versions.c.name == name
        )
        value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)

    async def versions_in(
        self, conn: AsyncConnection, name: str, stages: tuple[ModelStage, ...]
    ) -> dict[int, ModelStage]:
        """Versions of ``name`` currently in one of ``stages``."""
        query = sa.select(model_versions.c.version, model_versions.c.stage).where(
            model_versions.c.name == name,
            model_versions.c.stage.in_([s.value for s in stages]),
        )
        return {row.version: ModelStage(row.stage) for row in (await conn.execute(query)).all()}

    async def set_stage(
        self, conn: AsyncConnection, name: str, version: int, stage: ModelStage
    ) -> None:
        """Move one version to ``stage``."""
        await conn.execute(
            model_versions.update()
            .where(model_versions.c.name == name, model_versions.c.version == version)
            .values(stage=stage.value)
        )

    async def summaries(self, conn: AsyncConnection) -> list[ModelSummary]:
        """Every model name with its latest and Production version."""
        production = (
            sa.select(model_versions.c.version)
            .where(
                model_versions.c.name == registered_models.c.name,
                model_versions.c.stage == ModelStage.PRODUCTION.value,
            )
            .scalar_subquery()
        )
        query = (
            sa.select(registered_models.c.name, registered_models.c.latest_version, production)
            .where(registered_models.c.latest_version > 0)
            .order_by(registered_models.c.name)
        )
        return [
            ModelSummary(name=row[0], latest_version=row[1], production_version=row[2])
            for row in (await conn.execute(query)).all()
        ]

    async def versions_using_feature(
        self, conn: AsyncConnection, feature: str, feature_version: int
    ) -> list[ModelVersionRef]:
        """Every model version built from ``feature`` version ``feature_version``."""
        query = (
            sa.select(model_versions.c.name, model_versions.c.version, model_versions.c.stage)
            .join(
                model_version_features,
                sa.and_(
                    model_version_features.c.name == model_versions.c.name,
                    model_version_features.c.version == model_versions.c.version,
                ),
            )
            .where(
                model_version_features.c.feature_name == feature,
                model_version_features.c.feature_version == feature_version,
            )
            .order_by(model_versions.c.name, model_versions.c.version)
        )
        return [
            ModelVersionRef(name=row.name, version=row.version, stage=ModelStage(row.stage))
            for row in (await conn.execute(query)).all()
        ]

    async def insert_card(self, conn: AsyncConnection, revision: CardRevision) -> None:
        """Write a card revision and make it the version's current one."""
        values = msgspec.structs.asdict(revision)
        values.pop("reviews")
        values |= {"card": encode(revision.card), "status": revision.status.value}
        await conn.execute(model_cards.insert().values(**values))
        await conn.execute(
            model_versions.update()
            .where(
                model_versions.c.name == revision.name,
                model_versions.c.version == revision.version,
            )
            .values(card_revision=revision.revision)
        )

    async def card_revisions(
        self, conn: AsyncConnection, name: str, version: int
    ) -> list[CardRevision]:
        """Every card revision of a version with its reviews, oldest first."""
        cards = (
            await conn.execute(
                sa.select(model_cards)
                .where(model_cards.c.name == name, model_cards.c.version == version)
                .order_by(model_cards.c.revision)
            )
        ).all()
        reviews = (
            await conn.execute(
                sa.select(card_reviews)
                .where(card_reviews.c.name == name, card_reviews.c.version == version)
                .order_by(card_reviews.c.id)
            )
        ).all()
        by_revision: dict[int, list[CardReview]] = {}
        for row in reviews:
            values = {str(k): utc(v) for k, v in row._asdict().items()}
            by_revision.setdefault(row.revision, []).append(msgspec.convert(values, CardReview))
        return [
            CardRevision(
                name=row.name,
                version=row.version,
                revision=row.revision,
                card=msgspec.json.decode(row.card, type=ModelCard),
                card_sha256=row.card_sha256,
                status=CardStatus(row.status),
                created_at=utc(row.created_at),
                created_by=row.created_by,
                reason=row.reason,
                reviews=tuple(by_revision.get(row.revision, ())),
            )
            for row in cards
        ]

    async def record_review(
        self, conn: AsyncConnection, name: str, version: int, review: CardReview
    ) -> None:
        """Move a card revision to ``review.to_status`` and record who did it."""
        await conn.execute(
            model_cards.update()
            .where(
                model_cards.c.name == name,
                model_cards.c.version == version,
                model_cards.c.revision == review.revision,
            )
            .values(status=review.to_status.value)
        )
        values = msgspec.structs.asdict(review) | {
            "name": name,
            "version": version,
            "from_status": review.from_status.value,
            "to_status": review.to_status.value,
        }
        await conn.execute(card_reviews.insert().values(**values))
