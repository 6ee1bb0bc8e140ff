"""API tokens: issued once in the clear, stored as SHA-256, looked up by hash.

A token carries 256 random bits, so a plain SHA-256 (no salt, no slow hash) is enough: there is
nothing to brute-force. Lookup is by the hash (an indexed equality, so timing reveals nothing
about the secret) and the stored hash is compared again with :func:`hmac.compare_digest`.
The first start of a control plane against a database issues an admin token and writes it to
``settings.control_plane.admin_token_file`` (mode 0600). Exactly one such bootstrap token is
ever issued per database, however many replicas start at once: the replica that inserts the
one ``security_bootstrap`` row (primary key ``admin_token``, insert-if-absent) issues the token
in the same transaction; the others' inserts wait for that transaction (PostgreSQL's unique
index; SQLite's write lock) and then insert nothing. The token file is written before the
commit, so a start that dies in between leaves no marker and the next start issues again.

Revoking the last active (unrevoked) admin token is refused, since nothing would issue another.
The check and the update share one write transaction that first locks every active admin row
(``SELECT ... FOR UPDATE`` in id order on PostgreSQL; SQLite's write transaction holds the
database write lock): of two concurrent revocations of the last two admin tokens, the second
waits for the first, then sees one active admin token left and is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from control_plane.security.models import IssuedToken, Principal, TokenInfo
from modelyard.enums import Role
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from modelyard.models import Name
from modelyard.storage.audit import AuditEvent, AuditLog
from modelyard.storage.database import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

TOKEN_PREFIX = "my_"
BOOTSTRAP_ACTOR = "bootstrap"

metadata = sa.MetaData()

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("principal", sa.String(128), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
)

security_bootstrap = sa.Table(
    "security_bootstrap",
    metadata,
    sa.Column("step", sa.String(32), primary_key=True),
    sa.Column("token_id", sa.String(36), nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
)
"""One row per bootstrap step done for this database (``admin_token``)."""

_ADMIN_TOKEN_STEP = "admin_token"
_NAME_DECODER = msgspec.json.Decoder(Name)


def hash_token(token: str) -> str:
    """The stored form of a token.

    >>> len(hash_token("my_x")), hash_token("my_x") == hash_token("my_x")
    (64, True)
    """
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: sa.Row[tuple[object, ...]]) -> TokenInfo:
    values = {str(k): v for k, v in row._asdict().items()}
    values.pop("token_sha256")
    created = values["created_at"]
    if isinstance(created, dt.datetime) and created.tzinfo is None:
        values["created_at"] = created.replace(tzinfo=dt.UTC)
    return msgspec.convert(values, TokenInfo)


class TokenService:
    """Issue, list, revoke and check API tokens.

    Args:
        database: the platform database.
        audit_log: where issuing and revoking are recorded.
    """

    def __init__(self, database: Database, audit_log: AuditLog) -> None:
        self._database = database
        self._audit_log = audit_log

    async def issue(
        self, principal: str, role: Role, *, actor: str, description: str = ""
    ) -> IssuedToken:
        """Issue a token for ``principal`` with ``role``; the secret is returned only here.

        Raises:
            InvalidArgument: ``principal`` is not a valid name.
        """
        _check_name(principal)
        async with self._database.write() as conn:
            return await self._insert(conn, principal, role, actor=actor, description=description)

    async def _insert(
        self,
        conn: AsyncConnection,
        principal: str,
        role: Role,
        *,
        actor: str,
        description: str,
        token_id: str | None = None,
    ) -> IssuedToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=token_id or str(uuid.uuid4()),
            principal=principal,
            role=role,
            created_at=dt.datetime.now(dt.UTC),
            created_by=actor,
            description=description,
        )
        values = msgspec.structs.asdict(info) | {"role": role.value}
        await conn.execute(api_tokens.insert().values(token_sha256=hash_token(token), **values))
        await self._audit_log.record(
            conn,
            AuditEvent(
                actor=actor,
                action="issue_token",
                entity_kind="api_token",
                entity=info.id,
                to_state=role.value,
                reason=f"token for {principal}",
            ),
        )
        return IssuedToken(token=token, info=info)

    async def authenticate(self, token: str) -> Principal:
        """The principal a presented token speaks for.

        Raises:
            Unauthenticated: the token is unknown or revoked.
        """
        digest = hash_token(token)
        query = sa.select(api_tokens).where(api_tokens.c.token_sha256 == digest)
        async with self._database.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None or row.revoked or not hmac.compare_digest(row.token_sha256, digest):
            raise Unauthenticated("invalid or revoked API token")
        return Principal(name=row.principal, role=Role(row.role), token_id=row.id)

    async def list(self) -> list[TokenInfo]:
        """Every token (never the secrets), oldest first."""
        query = sa.select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        async with self._database.read() as conn:
            return [_info(row) for row in (await conn.execute(query)).all()]

    async def revoke(self, token_id: str, *, actor: str) -> TokenInfo:
        """Revoke a token; it authenticates nobody afterwards. Revoking twice is harmless.

        Raises:
            NotFound: no token has that id.
            FailedPrecondition: it is the last active admin token.
        """
        async with self._database.write() as conn:
            role = (
                await conn.execute(sa.select(api_tokens.c.role).where(api_tokens.c.id == token_id))
            ).scalar_one_or_none()
            if role is None:
                raise NotFound("api token", token_id)
            if role == Role.ADMIN.value:
                await self._refuse_last_admin(conn, token_id)
            await conn.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(revoked=True)
            )
            await self._audit_log.record(
                conn,
                AuditEvent(
                    actor=actor, action="revoke_token", entity_kind="api_token", entity=token_id
                ),
            )
            row = (
                await conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id))
            ).one()
        return _info(row)

    @staticmethod
    async def _refuse_last_admin(conn: AsyncConnection, token_id: str) -> None:
        # NOTE: locks every active admin row in one order (no deadlock between revocations); a
        # waiter re-reads the rows once the holder commits, so it sees that holder's revocation.
        active = sa.select(api_tokens.c.id).where(
            api_tokens.c.role == Role.ADMIN.value, api_tokens.c.revoked == sa.false()
        )
        ids = (await conn.execute(active.order_by(api_tokens.c.id).with_for_update())).scalars()
        if list(ids) == [token_id]:
            raise FailedPrecondition(
                f"api token {token_id!r} is the last active admin token: issue another admin "
                "token before revoking it"
            )

    async def ensure_admin_token(self, path: Path) -> Path | None:
        """Issue this database's one bootstrap admin token and write it to ``path`` (0600).

        Returns:
            ``path`` when this call issued the token; None when the database has one already
            (issued by this or another replica, now or at any earlier start).
        """
        async with self._database.write() as conn:
            token_id = str(uuid.uuid4())
            claimed = await conn.execute(self._claim_bootstrap(token_id))
            if claimed.rowcount != 1:
                return None
            issued = await self._insert(
                conn,
                "admin",
                Role.ADMIN,
                actor=BOOTSTRAP_ACTOR,
                description="first admin token",
                token_id=token_id,
            )
            # NOTE: written before the commit: a failed write rolls the claim back, so a later
            # start issues again instead of leaving a token nobody received.
            _write_secret(path, issued.token)
        return path

    def _claim_bootstrap(self, token_id: str) -> sa.Executable:
        insert = sqlite.insert if self._database.is_sqlite else postgresql.insert
        row = {"step": _ADMIN_TOKEN_STEP, "token_id": token_id, "done_at": dt.datetime.now(dt.UTC)}
        claim: sa.Executable = insert(security_bootstrap).values(**row).on_conflict_do_nothing()
        return claim


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


def _check_name(name: str) -> None:
    try:
        _NAME_DECODER.decode(msgspec.json.encode(name))
    except msgspec.ValidationError:
        raise InvalidArgument(
            f"invalid principal name {name!r}: letters, digits and _ . - only"
        ) from None
