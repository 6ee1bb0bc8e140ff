"""Security of the control plane over REST: tokens, roles on every mutating endpoint, the
first admin token, self-approval, and the audit trail of who did what."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from control_plane.security.tokens import TokenService, hash_token
from control_plane.server import ControlPlaneServer
from modelyard.enums import Role
from tests.control_plane.features.strategies import sample_definition, sample_update
from tests.control_plane.registry.helpers import card, registration, with_lineage_features

ROLES = ["viewer", "developer", "approver", "auditor", "admin"]


def body(value: Any) -> Any:
    return msgspec.to_builtins(value)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token_file(path: Path) -> tuple[int, str]:
    return stat.S_IMODE(path.stat().st_mode), path.read_text().strip()


def admin_token(server: ControlPlaneServer) -> str:
    return Path(server.settings.control_plane.admin_token_file).read_text().strip()


async def issue(client: httpx.AsyncClient, admin: str, principal: str, role: str) -> str:
    answer = await client.post(
        "/v1/tokens", json={"principal": principal, "role": role}, headers=auth(admin)
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


async def registered(client: httpx.AsyncClient, token: str, name: str = "churn") -> int:
    answer = await client.post(
        f"/v1/models/{name}/versions", json=body(registration()), headers=auth(token)
    )
    assert answer.status_code == 201, answer.text
    version: int = answer.json()["version"]
    return version


def endpoints(version: int, token_id: str) -> list[tuple[str, str, Any, str]]:
    """(method, path, body, permission) of every mutating endpoint."""
    base = f"/v1/models/churn/versions/{version}"
    return [
        ("POST", "/v1/models/churn/versions", body(registration()), "write"),
        ("PUT", f"{base}/card", {"card": body(card()), "reason": "edit"}, "write"),
        ("POST", f"{base}/card/submit", {"reason": "ready"}, "write"),
        ("POST", f"{base}/card/reviews", {"decision": "rejected"}, "review"),
        ("POST", f"{base}/transitions", {"stage": "Staging"}, "write"),
        ("POST", f"{base}/transitions", {"stage": "Production"}, "promote"),
        ("POST", "/v1/tokens", {"principal": "x", "role": "viewer"}, "admin"),
        ("DELETE", f"/v1/tokens/{token_id}", None, "admin"),
        ("GET", "/v1/tokens", None, "audit"),
        ("GET", "/v1/audit", None, "audit"),
        ("POST", "/v1/models/churn/publish", None, "admin"),
        ("POST", "/v1/features", body(sample_definition("tenure")), "write"),
        ("PUT", "/v1/features/age", body(sample_update(owner="risk-2")), "write"),
        ("DELETE", "/v1/features/age", None, "write"),
        ("POST", "/v1/tuning/jobs", TUNING_JOB, "write"),
        ("POST", "/v1/tuning/jobs/no-such-job/cancel", None, "write"),
    ]


TUNING_JOB = {"model": "logistic_regression", "dataset": "sklearn:iris", "n_trials": 1}


ALLOWED = {
    "viewer": set(),
    "developer": {"write"},
    "approver": {"review", "promote"},
    "auditor": {"audit"},
    "admin": {"write", "review", "promote", "audit", "admin"},
}


@pytest.mark.slow
async def test_each_role_against_each_mutating_endpoint(control_plane: ControlPlaneServer) -> None:
    await with_lineage_features(control_plane)
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=60) as client:
        admin = admin_token(control_plane)
        tokens = {role: await issue(client, admin, f"p-{role}", role) for role in ROLES}
        tokens["admin"] = admin
        owner = await issue(client, admin, "owner", "developer")
        victim = (await client.get("/v1/tokens", headers=auth(admin))).json()[-1]["id"]
        version = await registered(client, owner)
        for method, path, payload, permission in endpoints(version, victim):
            anonymous = await client.request(method, path, json=payload)
            assert anonymous.status_code == 401, (method, path)
            assert "token" in anonymous.json()["error"]
            invalid = await client.request(method, path, json=payload, headers=auth("my_nope"))
            assert invalid.status_code == 401, (method, path)
            for role in ROLES:
                answer = await client.request(
                    method, path, json=payload, headers=auth(tokens[role])
                )
                if permission in ALLOWED[role]:
                    assert answer.status_code not in (401, 403), (role, method, path, answer.text)
                else:
                    assert answer.status_code == 403, (role, method, path, answer.text)
                    assert answer.json()["code"] == "permission_denied"
        reads = ["/v1/models", f"/v1/models/churn/versions/{version}"]  # audit: see above
        for path in reads:
            assert (await client.get(path)).status_code == 200, path


async def test_self_approval_is_refused(control_plane: ControlPlaneServer) -> None:
    await with_lineage_features(control_plane)
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=60) as client:
        admin = admin_token(control_plane)
        approver = await issue(client, admin, "ann", "approver")
        version = await registered(client, admin)
        base = f"/v1/models/churn/versions/{version}/card"
        assert (await client.post(f"{base}/submit", json={}, headers=auth(admin))).is_success
        own = await client.post(
            f"{base}/reviews", json={"decision": "approved"}, headers=auth(admin)
        )
        assert own.status_code == 403
        assert "cannot review" in own.json()["error"]
        other = await client.post(
            f"{base}/reviews", json={"decision": "approved", "reason": "ok"}, headers=auth(approver)
        )
        assert other.status_code == 200, other.text
        review = other.json()["reviews"][-1]
        assert (review["actor"], review["to_status"]) == ("ann", "approved")
        assert review["card_sha256"] == other.json()["card_sha256"]
        events = (
            await client.get("/v1/audit", params={"entity_kind": "model_card"}, headers=auth(admin))
        ).json()
        assert [(e["actor"], e["action"], e["from_state"], e["to_state"]) for e in events] == [
            ("admin", "submit_card", "draft", "pending_review"),
            ("ann", "approved", "pending_review", "approved"),
        ]


async def test_first_start_writes_an_admin_token(control_plane: ControlPlaneServer) -> None:
    services = control_plane.services
    assert services is not None
    path = Path(control_plane.settings.control_plane.admin_token_file)
    assert services.admin_token_path == path
    mode, token = _token_file(path)
    assert mode == 0o600
    principal = await services.token_service.authenticate(token)
    assert principal.role is Role.ADMIN
    assert await services.token_service.ensure_admin_token(path) is None
    assert _token_file(path) == (0o600, token)
    async with httpx.AsyncClient(base_url=control_plane.url) as client:
        me = await client.get("/v1/tokens/me", headers=auth(token))
        assert me.json()["role"] == "admin"
        listed = (await client.get("/v1/tokens", headers=auth(token))).json()
    assert all("token" not in info and hash_token(token) not in str(info) for info in listed)


async def test_revoked_tokens_authenticate_nobody(control_plane: ControlPlaneServer) -> None:
    services = control_plane.services
    assert services is not None
    tokens: TokenService = services.token_service
    issued = await tokens.issue("dev", Role.DEVELOPER, actor="admin")
    async with httpx.AsyncClient(base_url=control_plane.url) as client:
        admin = admin_token(control_plane)
        before = await client.get("/v1/tokens/me", headers=auth(issued.token))
        assert before.json()["name"] == "dev"
        revoked = await client.delete(f"/v1/tokens/{issued.info.id}", headers=auth(admin))
        assert revoked.json()["revoked"] is True
        after = await client.get("/v1/tokens/me", headers=auth(issued.token))
        assert after.status_code == 401
        events = (
            await client.get("/v1/audit", params={"entity_kind": "api_token"}, headers=auth(admin))
        ).json()
    assert [e["action"] for e in events][-2:] == ["issue_token", "revoke_token"]
