"""The bootstrap admin token: exactly one per database, however many replicas start at once.

Replicas are real control planes (uvicorn on port 0), each with its own connection pool, all
started together against one empty database on each backend: they migrate it and race for the
bootstrap, and every one of them then serves requests with the one token issued.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa

from control_plane.security.tokens import (
    BOOTSTRAP_ACTOR,
    TokenService,
    api_tokens,
    security_bootstrap,
)
from control_plane.server import ControlPlaneServer
from modelyard.enums import Role
from modelyard.storage import Database, upgrade
from modelyard.storage.audit import AuditLog
from tests.conftest import POSTGRES_URL, PostgresSchema
from tests.control_plane.conftest import control_plane_settings

REPLICAS = 3


@asynccontextmanager
async def empty_database(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    """The URL and schema of one empty database (nothing migrated yet)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'modelyard.db'}", None
        return
    schema = PostgresSchema()
    await schema.create()
    try:
        yield POSTGRES_URL, schema.name
    finally:
        await schema.drop()


async def _bootstrap_rows(database: Database) -> tuple[list[sa.Row[tuple[object, ...]]], list[str]]:
    async with database.read() as conn:
        tokens = (await conn.execute(sa.select(api_tokens))).all()
        marked = (await conn.execute(sa.select(security_bootstrap.c.token_id))).scalars().all()
    return list(tokens), list(marked)


async def test_replicas_starting_at_once_issue_exactly_one_bootstrap_token(
    backend: str, tmp_path: Path
) -> None:
    async with empty_database(backend, tmp_path) as (url, schema), AsyncExitStack() as stack:
        settings = control_plane_settings(tmp_path, url)
        replicas = [ControlPlaneServer(settings, port=0, schema=schema) for _ in range(REPLICAS)]
        started = await asyncio.gather(*(r.start() for r in replicas), return_exceptions=True)
        for replica, outcome in zip(replicas, started, strict=True):
            if not isinstance(outcome, BaseException):
                stack.push_async_callback(replica.stop)
        assert [o for o in started if isinstance(o, BaseException)] == []

        paths = [r.services.admin_token_path for r in replicas if r.services is not None]
        assert len([p for p in paths if p is not None]) == 1, paths
        token_file = Path(settings.control_plane.admin_token_file)
        token = (await asyncio.to_thread(token_file.read_text)).strip()
        assert replicas[0].services is not None
        tokens, marked = await _bootstrap_rows(replicas[0].services.database)
        assert [(t.created_by, t.role) for t in tokens] == [(BOOTSTRAP_ACTOR, "admin")]
        assert marked == [tokens[0].id]
        for index, replica in enumerate(replicas):
            async with httpx.AsyncClient(
                base_url=replica.url, headers={"Authorization": f"Bearer {token}"}
            ) as client:
                me = await client.get("/v1/tokens/me")
                assert (me.status_code, me.json()["role"]) == (200, "admin"), me.text
                issued = await client.post(
                    "/v1/tokens", json={"principal": f"dev{index}", "role": "developer"}
                )
                assert issued.status_code == 201, issued.text


async def test_concurrent_bootstraps_on_one_migrated_database_issue_one_token(
    database: Database, tmp_path: Path
) -> None:
    # One connection pool per contender: the database, not this process, decides the winner.
    contenders = [Database(database.url, schema=database.schema) for _ in range(4)]
    try:
        services = [TokenService(db, AuditLog(db)) for db in contenders]
        written = await asyncio.gather(
            *(s.ensure_admin_token(tmp_path / f"token-{i}") for i, s in enumerate(services))
        )
    finally:
        for db in contenders:
            await db.dispose()
    winners = [path for path in written if path is not None]
    assert len(winners) == 1, written
    tokens, marked = await _bootstrap_rows(database)
    assert len(tokens) == 1
    assert marked == [tokens[0].id]
    principal = await TokenService(database, AuditLog(database)).authenticate(
        winners[0].read_text().strip()
    )
    assert principal.name == "admin"


async def test_the_bootstrap_token_is_issued_once_ever_even_after_revocation(
    database: Database, tmp_path: Path
) -> None:
    tokens = TokenService(database, AuditLog(database))
    path = tmp_path / "admin-token"
    assert await tokens.ensure_admin_token(path) == path
    first = await tokens.authenticate(path.read_text().strip())
    # The last active admin token cannot be revoked (test_last_admin.py): hand over first.
    second = await tokens.issue("admin2", Role.ADMIN, actor="admin")
    await tokens.revoke(first.token_id, actor="admin")
    path.unlink()
    assert await tokens.ensure_admin_token(path) is None
    assert not path.exists()
    assert {t.id for t in await tokens.list()} == {first.token_id, second.info.id}


async def test_a_failed_token_file_write_issues_nothing_and_a_later_start_retries(
    database: Database, tmp_path: Path
) -> None:
    tokens = TokenService(database, AuditLog(database))
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")  # a file where the token's folder should be: the write fails
    try:
        await tokens.ensure_admin_token(blocked / "admin-token")
    except OSError:
        pass
    else:
        raise AssertionError("the token file cannot be written there")
    assert await tokens.list() == []
    assert await _bootstrap_rows(database) == ([], [])
    path = tmp_path / "admin-token"
    assert await tokens.ensure_admin_token(path) == path


async def test_a_database_bootstrapped_before_the_marker_is_marked_by_its_migration(
    backend: str, tmp_path: Path
) -> None:
    async with empty_database(backend, tmp_path) as (url, schema):
        database = Database(url, schema=schema)
        try:
            await upgrade(database, target="security_0001")
            legacy = {
                "id": "00000000-0000-0000-0000-000000000001",
                "principal": "admin",
                "role": "admin",
                "token_sha256": "0" * 64,
                "created_at": sa.func.now(),
                "created_by": BOOTSTRAP_ACTOR,
                "revoked": True,
                "description": "first admin token",
            }
            async with database.write() as conn:
                await conn.execute(api_tokens.insert().values(**legacy))
            await upgrade(database)
            assert (await _bootstrap_rows(database))[1] == [legacy["id"]]
            service = TokenService(database, AuditLog(database))
            assert await service.ensure_admin_token(tmp_path / "admin-token") is None
        finally:
            await database.dispose()
