"""API tokens: issued once in the clear, stored as SHA-256, looked up by hash.

A token carries 256 random bits, so a plain SHA-256 (no salt, no slow hash) is enough: there is
nothing to brute-force. Lookup is by the hash (an indexed equality, so timing reveals nothing
about the secret) and the stored hash is compared again with :func:`hmac.compare_digest`.
The first start of an embedded control plane issues an admin token and writes it to
``settings.control_plane.admin_token_file`` (mode 0600).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path

import msgspec
import sqlalchemy as sa

from control_plane.security.models import IssuedToken, Principal, TokenInfo
from modelyard.enums import Role
from modelyard.errors import InvalidArgument, NotFound, Unauthenticated
from modelyard.models import Name
from modelyard.storage.audit import AuditEvent, AuditLog
from modelyard.storage.database import Database

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
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=str(uuid.uuid4()),
            principal=principal,
            role=role,
            created_at=dt.datetime.now(dt.UTC),
            created_by=actor,
            description=description,
        )
        values = msgspec.structs.asdict(info) | {"role": role.value}
        async with self._database.write() as conn:
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
        """Revoke a token; it authenticates nobody afterwards.

        Raises:
            NotFound: no token has that id.
        """
        async with self._database.write() as conn:
            result = await conn.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(revoked=True)
            )
            if result.rowcount == 0:
                raise NotFound("api token", token_id)
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

    async def ensure_admin_token(self, path: Path) -> Path | None:
        """On first start (no active admin token), issue one and write it to ``path``.

        Returns:
            ``path`` when a token was written now; None when an admin token existed already.
        """
        query = sa.select(sa.func.count()).where(
            api_tokens.c.role == Role.ADMIN.value, api_tokens.c.revoked.is_(False)
        )
        async with self._database.read() as conn:
            if (await conn.execute(query)).scalar_one() > 0:
                return None
        issued = await self.issue(
            "admin", Role.ADMIN, actor=BOOTSTRAP_ACTOR, description="first admin token"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(issued.token + "\n")
        return path


def _check_name(name: str) -> None:
    try:
        _NAME_DECODER.decode(msgspec.json.encode(name))
    except msgspec.ValidationError:
        raise InvalidArgument(
            f"invalid principal name {name!r}: letters, digits and _ . - only"
        ) from None
