"""Model card revisions and their review: draft -> pending_review -> approved | rejected.

A card belongs to one model version. Editing it writes revision n+1 in ``draft`` and makes it
current; earlier revisions and their reviews stay readable. A reviewer approves or rejects the
*current* revision while it is pending review; the review records who, when and the SHA-256
of the card content they signed. The reviewer needs the ``review`` permission (approver or
admin role) and must not be the principal who registered the version.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from control_plane.registry.card_rules import card_sha256, require_complete
from control_plane.registry.models import CardReview, CardRevision, ReviewDecision
from control_plane.security.guards import check
from control_plane.security.models import Permission
from modelyard.enums import CardStatus
from modelyard.errors import FailedPrecondition, NotFound, PermissionDenied
from modelyard.storage.audit import AuditEvent

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.registry.context import RegistryContext
    from control_plane.security.models import Principal
    from modelyard.models import ModelCard


class CardService:
    """Edit, submit and review model cards.

    Args:
        context: the shared registry dependencies.
    """

    def __init__(self, context: RegistryContext) -> None:
        self._ctx = context

    @staticmethod
    def new_revision(
        name: str, version: int, revision: int, card: ModelCard, principal: Principal, reason: str
    ) -> CardRevision:
        """A new draft revision written by ``principal`` now."""
        return CardRevision(
            name=name,
            version=version,
            revision=revision,
            card=card,
            card_sha256=card_sha256(card),
            status=CardStatus.DRAFT,
            created_at=dt.datetime.now(dt.UTC),
            created_by=principal.name,
            reason=reason,
        )

    async def history(self, name: str, version: int) -> list[CardRevision]:
        """Every revision of the version's card, oldest first.

        Raises:
            NotFound: no such version.
        """
        async with self._ctx.database.read() as conn:
            return await self._revisions(conn, name, version)

    async def current(self, name: str, version: int) -> CardRevision:
        """The current revision (the one queries return with the model)."""
        return (await self.history(name, version))[-1]

    async def _revisions(
        self, conn: AsyncConnection, name: str, version: int
    ) -> list[CardRevision]:
        revisions = await self._ctx.store.card_revisions(conn, name, version)
        if not revisions:
            raise NotFound("model", name, version=version)
        return revisions

    async def edit(
        self, name: str, version: int, card: ModelCard, principal: Principal, reason: str = ""
    ) -> CardRevision:
        """Write the card's next revision (draft) and make it current.

        Raises:
            NotFound: no such version.
            InvalidArgument: the card is incomplete.
        """
        check(principal, Permission.WRITE)
        require_complete(card, f"editing the card of {name!r} version {version}")
        async with self._ctx.database.write() as conn:
            await self._ctx.store.lock_model(conn, name)
            previous = (await self._revisions(conn, name, version))[-1]
            revision = self.new_revision(
                name, version, previous.revision + 1, card, principal, reason
            )
            await self._ctx.store.insert_card(conn, revision)
            await self._audit(conn, principal, "edit_card", revision, previous.status, reason)
        await self._ctx.mirror_model(name)
        return revision

    async def submit(
        self, name: str, version: int, principal: Principal, reason: str = ""
    ) -> CardRevision:
        """Ask for review of the current revision (draft -> pending_review).

        Raises:
            NotFound: no such version.
            FailedPrecondition: the current revision is not a draft.
        """
        check(principal, Permission.WRITE)
        return await self._move(
            name, version, principal, reason, CardStatus.DRAFT, CardStatus.PENDING_REVIEW
        )

    async def review(
        self,
        name: str,
        version: int,
        decision: ReviewDecision,
        principal: Principal,
        *,
        reason: str = "",
        revision: int | None = None,
    ) -> CardRevision:
        """Approve or reject the current revision, which must be pending review.

        Raises:
            NotFound: no such version.
            PermissionDenied: the reviewer lacks the approver role or registered the version.
            FailedPrecondition: the revision is not pending review, or ``revision`` is no
                longer the current one.
        """
        check(principal, Permission.REVIEW)
        target = CardStatus(decision.value)
        return await self._move(
            name, version, principal, reason, CardStatus.PENDING_REVIEW, target, revision
        )

    async def _move(
        self,
        name: str,
        version: int,
        principal: Principal,
        reason: str,
        source: CardStatus,
        target: CardStatus,
        expected_revision: int | None = None,
    ) -> CardRevision:
        async with self._ctx.database.write() as conn:
            await self._ctx.store.lock_model(conn, name)
            model = await self._ctx.store.get(conn, name, version)
            if source is CardStatus.PENDING_REVIEW and model.created_by == principal.name:
                raise PermissionDenied(
                    f"{principal.name!r} registered {name!r} version {version} "
                    "and cannot review its card"
                )
            current = (await self._revisions(conn, name, version))[-1]
            _check_state(current, source, expected_revision)
            review = CardReview(
                revision=current.revision,
                from_status=current.status,
                to_status=target,
                actor=principal.name,
                occurred_at=dt.datetime.now(dt.UTC),
                card_sha256=current.card_sha256,
                reason=reason,
            )
            await self._ctx.store.record_review(conn, name, version, review)
            action = {CardStatus.PENDING_REVIEW: "submit_card"}.get(target, target.value)
            await self._audit(conn, principal, action, current, current.status, reason, target)
            updated = (await self._revisions(conn, name, version))[-1]
        await self._ctx.mirror_model(name)
        return updated

    async def _audit(
        self,
        conn: AsyncConnection,
        principal: Principal,
        action: str,
        revision: CardRevision,
        from_status: CardStatus,
        reason: str,
        to_status: CardStatus | None = None,
    ) -> None:
        await self._ctx.audit_log.record(
            conn,
            AuditEvent(
                actor=principal.name,
                action=action,
                entity_kind="model_card",
                entity=f"{revision.name}/{revision.version}#{revision.revision}",
                from_state=from_status.value,
                to_state=(to_status or revision.status).value,
                reason=f"{reason} (card sha256 {revision.card_sha256})".strip(),
            ),
        )


def _check_state(current: CardRevision, source: CardStatus, expected: int | None) -> None:
    where = f"card revision {current.revision} of {current.name!r} version {current.version}"
    if expected is not None and expected != current.revision:
        raise FailedPrecondition(f"{where} is current, not revision {expected}")
    if current.status is not source:
        raise FailedPrecondition(f"{where} is {current.status.value}, not {source.value}")
