"""The control-plane shell: health, error shape, OpenAPI, the audit log endpoint."""

from __future__ import annotations

import httpx

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
