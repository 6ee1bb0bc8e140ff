"""The last active admin token cannot be revoked: on each backend, over REST, and when two
revocations of the last two admin tokens race (each on its own connection pool, so the database,
not this process, orders them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from control_plane.security.tokens import TokenService
from control_plane.server import ControlPlaneServer
from modelyard.enums import Role
from modelyard.errors import FailedPrecondition
from modelyard.storage import Database
from modelyard.storage.audit import AuditLog


def _tokens(database: Database) -> TokenService:
    return TokenService(database, AuditLog(database))


async def test_revoking_the_last_active_admin_token_is_refused(
    database: Database, tmp_path: Path
) -> None:
    tokens = _tokens(database)
    path = tmp_path / "admin-token"
    assert await tokens.ensure_admin_token(path) == path
    admin = await tokens.authenticate(path.read_text().strip())
    developer = await tokens.issue("dev", Role.DEVELOPER, actor="admin")
    await tokens.revoke(developer.info.id, actor="admin")
    with pytest.raises(FailedPrecondition, match="last active admin token"):
        await tokens.revoke(admin.token_id, actor="admin")
    assert (await tokens.authenticate(path.read_text().strip())).token_id == admin.token_id
    second = await tokens.issue("admin2", Role.ADMIN, actor="admin")
    assert (await tokens.revoke(admin.token_id, actor="admin")).revoked is True
    assert (await tokens.revoke(admin.token_id, actor="admin")).revoked is True
    with pytest.raises(FailedPrecondition):
        await tokens.revoke(second.info.id, actor="admin")


async def test_concurrent_revocations_of_the_last_two_admin_tokens_leave_one(
    database: Database,
) -> None:
    tokens = _tokens(database)
    admins = [await tokens.issue(f"admin{i}", Role.ADMIN, actor="admin") for i in range(2)]
    contenders = [Database(database.url, schema=database.schema) for _ in admins]
    try:
        outcomes = await asyncio.gather(
            *(
                _tokens(db).revoke(issued.info.id, actor="admin")
                for db, issued in zip(contenders, admins, strict=True)
            ),
            return_exceptions=True,
        )
    finally:
        for db in contenders:
            await db.dispose()
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], FailedPrecondition), outcomes
    active = [t for t in await tokens.list() if t.role is Role.ADMIN and not t.revoked]
    assert len(active) == 1


async def test_rest_refuses_the_last_admin_revocation_with_409(
    control_plane: ControlPlaneServer,
) -> None:
    token_file = Path(control_plane.settings.control_plane.admin_token_file)
    token = (await asyncio.to_thread(token_file.read_text)).strip()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=control_plane.url, headers=headers) as client:
        me = (await client.get("/v1/tokens/me")).json()
        answer = await client.delete(f"/v1/tokens/{me['token_id']}")
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "failed_precondition"
        assert "last active admin token" in answer.json()["error"]
        assert (await client.get("/v1/tokens/me")).status_code == 200
