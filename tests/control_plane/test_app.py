"""The control-plane shell: health, error shape, OpenAPI, the audit log endpoint."""

from __future__ import annotations

import httpx
import pytest

from control_plane.errors import HTTP_STATUS_BY_CODE
from control_plane.server import ControlPlaneServer
from modelyard.errors import ErrorCode
from modelyard.storage.audit import AuditEvent
from tests.control_plane.conftest import admin_token


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS_BY_CODE) == set(ErrorCode)


async def test_health_and_openapi(control_plane: ControlPlaneServer) -> None:
    async with httpx.AsyncClient(base_url=control_plane.url) as client:
        assert (await client.get("/health")).json()["status"] == "ok"
        schema = (await client.get("/schema/openapi.json")).json()
        assert "/v1/audit" in schema["paths"]


async def test_errors_are_json_naming_the_problem(control_plane: ControlPlaneServer) -> None:
    async with httpx.AsyncClient(base_url=control_plane.url) as client:
        missing = await client.get("/v1/nothing-here")
        assert missing.status_code == 404
        assert "error" in missing.json()
        bad = await client.get("/v1/audit", params={"limit": "zero"}, headers=_admin(control_plane))
        assert bad.status_code == 422
        assert "limit" in bad.json()["error"]
        assert (await client.get("/health")).status_code == 200


async def test_audit_log_is_readable_over_rest(control_plane: ControlPlaneServer) -> None:
    services = control_plane.services
    assert services is not None
    async with services.database.write() as conn:
        await services.audit_log.record(
            conn,
            AuditEvent(
                actor="alice",
                action="register",
                entity_kind="model_version",
                entity="churn/1",
                to_state="None",
            ),
        )
    async with httpx.AsyncClient(base_url=control_plane.url) as client:
        anonymous = await client.get("/v1/audit", params={"actor": "alice"})
        assert anonymous.status_code == 401
        assert "token" in anonymous.json()["error"]
        answer = await client.get(
            "/v1/audit", params={"actor": "alice"}, headers=_admin(control_plane)
        )
    events = answer.json()
    assert [(e["actor"], e["entity"]) for e in events] == [("alice", "churn/1")]


def _admin(server: ControlPlaneServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token(server)}"}


BAD_INPUT = [
    ("GET", "/v1/models/churn/versions/" + "9" * 30, None, 422, "version"),
    ("GET", "/v1/models/churn/versions/" + str(2**31), None, 422, "version"),
    ("GET", "/v1/audit?offset=" + "9" * 30, None, 422, "offset"),
    ("GET", "/v1/models/versions?offset=" + str(2**64), None, 422, "offset"),
    ("POST", "/v1/features", b"[" * 100_000 + b"]" * 100_000, 400, "nests too deeply"),
    ("POST", "/v1/models/churn/versions", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "deep"),
    ("POST", "/v1/features", b'{"name": "\xff\xfe"}', 400, "UTF-8"),
    ("POST", "/v1/tokens", b'{"principal": "../x", "role": "viewer"}', 422, "principal"),
    ("POST", "/v1/tokens", b'{"principal": 5, "role": "viewer"}', 422, "principal"),
    ("POST", "/v1/tokens", b'{"principal": "ok", "role": "root"}', 422, "role"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "named"), BAD_INPUT)
async def test_client_errors_are_4xx_naming_the_problem(
    control_plane: ControlPlaneServer,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    named: str,
) -> None:
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=30) as client:
        answer = await client.request(
            method,
            path,
            content=body,
            headers=_admin(control_plane) | {"content-type": "application/json"},
        )
        assert answer.status_code == status, answer.text
        assert named in answer.json()["error"]
        assert (await client.get("/health")).status_code == 200
