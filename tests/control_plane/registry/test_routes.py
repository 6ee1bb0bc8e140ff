"""The registry over REST: the whole flow, error answers, OpenAPI, and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import msgspec
import pytest

from control_plane.registry.artifacts import ArtifactStore
from control_plane.registry.context import RegistryContext
from control_plane.registry.publisher import RepositoryPublisher
from control_plane.registry.service import RegistryService
from control_plane.registry.store import RegistryStore
from control_plane.server import ControlPlaneServer
from modelyard.errors import InvalidArgument, NotFound
from modelyard.models import Feature, FeatureRef, ModelCard
from modelyard.storage.audit import AuditLog
from modelyard.storage.database import Database
from tests.control_plane.registry.helpers import (
    DEVELOPER,
    admin_token_of,
    card,
    lineage,
    registration,
    with_lineage_features,
)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _tokens(client: httpx.AsyncClient, admin: str) -> tuple[str, str]:
    tokens = []
    for principal, role in (("dev", "developer"), ("ann", "approver")):
        answer = await client.post(
            "/v1/tokens", json={"principal": principal, "role": role}, headers=auth(admin)
        )
        tokens.append(answer.json()["token"])
    return tokens[0], tokens[1]


async def test_register_review_promote_and_query_over_rest(
    control_plane: ControlPlaneServer,
) -> None:
    await with_lineage_features(control_plane)
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=60) as client:
        dev, ann = await _tokens(client, admin_token_of(control_plane))
        body = msgspec.to_builtins(registration())
        created = await client.post("/v1/models/churn/versions", json=body, headers=auth(dev))
        assert created.status_code == 201, created.text
        assert (created.json()["version"], created.json()["card_status"]) == (1, "draft")
        base = "/v1/models/churn/versions/1"
        early = await client.post(
            f"{base}/transitions", json={"stage": "Production"}, headers=auth(ann)
        )
        assert early.status_code == 409
        assert "cannot move from None to Production" in early.json()["error"]
        await client.post(f"{base}/transitions", json={"stage": "Staging"}, headers=auth(dev))
        refused = await client.post(
            f"{base}/transitions", json={"stage": "Production"}, headers=auth(ann)
        )
        assert refused.status_code == 409
        assert "not approved" in refused.json()["error"]
        await client.post(f"{base}/card/submit", json={}, headers=auth(dev))
        review = {"decision": "approved", "reason": "fine", "revision": 1}
        assert (
            await client.post(f"{base}/card/reviews", json=review, headers=auth(ann))
        ).is_success
        promoted = await client.post(
            f"{base}/transitions",
            json={"stage": "Production", "reason": "go live"},
            headers=auth(ann),
        )
        assert promoted.json()["stage"] == "Production"
        production = (await client.get("/v1/models/churn/production")).json()
        assert msgspec.convert(production["card"], ModelCard) == card()
        assert (await client.get(f"{base}/lineage")).json()["features"] == [
            {"name": "age", "version": 1}
        ]
        usage = (await client.get("/v1/lineage/features/age/1")).json()
        assert usage["models"] == [{"name": "churn", "version": 1, "stage": "Production"}]
        staged = (await client.get("/v1/models/versions", params={"stage": "Production"})).json()
        assert [(m["name"], m["version"]) for m in staged] == [("churn", 1)]
        events = (
            await client.get(
                "/v1/audit",
                params={"entity": "churn/1"},
                headers=auth(admin_token_of(control_plane)),
            )
        ).json()
    assert [(e["actor"], e["action"], e["from_state"], e["to_state"]) for e in events] == [
        ("dev", "register", None, "None"),
        ("dev", "transition", "None", "Staging"),
        ("ann", "transition", "Staging", "Production"),
    ]
    assert events[-1]["reason"] == "go live"


async def test_bad_requests_get_clear_errors(control_plane: ControlPlaneServer) -> None:
    await with_lineage_features(control_plane)
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=60) as client:
        dev, _ = await _tokens(client, admin_token_of(control_plane))
        body = msgspec.to_builtins(registration())
        no_card = {k: v for k, v in body.items() if k != "card"}
        answer = await client.post("/v1/models/churn/versions", json=no_card, headers=auth(dev))
        assert answer.status_code == 422
        assert "model card is required" in answer.json()["error"]
        typo = body | {"cards": body["card"]}
        answer = await client.post("/v1/models/churn/versions", json=typo, headers=auth(dev))
        assert answer.status_code == 422
        assert "cards" in answer.json()["error"]
        for bad in ({"fidelity": {"a": "NaN"}}, {"fidelity": {"max_abs_diff": "Infinity"}}):
            # NOTE: stored as null before, and the read right after the insert failed: a 500
            answer = await client.post(
                "/v1/models/churn/versions", json=body | bad, headers=auth(dev)
            )
            assert answer.status_code == 422, answer.text
            assert "fidelity[...]" in answer.json()["error"]
        junk = body | {"onnx": "bm90IG9ubng="}
        answer = await client.post("/v1/models/churn/versions", json=junk, headers=auth(dev))
        assert answer.status_code == 422
        assert "not a valid ONNX model" in answer.json()["error"]
        answer = await client.post("/v1/models/..x/versions", json=body, headers=auth(dev))
        assert answer.status_code == 422
        assert "name: Expected 1-128 letters, digits" in answer.json()["error"]
        assert (await client.get("/v1/models/churn/versions/7")).status_code == 404
        assert (await client.get("/v1/models/churn/production")).status_code == 404
        schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/v1/models/{name}/versions",
        "/v1/models/{name}/versions/{version}/transitions",
        "/v1/models/{name}/versions/{version}/card/reviews",
        "/v1/lineage/features/{feature}/{feature_version}",
        "/v1/tokens",
    ):
        assert path in schema["paths"], path


class FeatureCatalogue:
    """A feature store as the registry sees it: the (name, version) pairs that exist."""

    def __init__(self, known: set[tuple[str, int]]) -> None:
        self.known = known

    async def resolve(self, refs: Sequence[FeatureRef]) -> Sequence[Feature]:
        for ref in refs:
            if (ref.name, ref.version) not in self.known:
                raise NotFound("feature", ref.name, version=ref.version)
        return []


async def test_lineage_features_are_checked_against_the_feature_store(
    database: Database, tmp_path: Path
) -> None:
    artifacts = ArtifactStore(tmp_path / "artifacts")
    checked = RegistryService(
        RegistryContext(
            database=database,
            store=RegistryStore(database.dialect),
            audit_log=AuditLog(database),
            artifacts=artifacts,
            publisher=RepositoryPublisher(tmp_path / "repository", artifacts),
            features=FeatureCatalogue({("age", 1)}),
        )
    )
    assert (await checked.register("churn", registration(), DEVELOPER)).version == 1
    unknown = registration(lineage=lineage(features=(("age", 2),)))
    with pytest.raises(InvalidArgument, match="unknown feature: feature 'age' version 2 not found"):
        await checked.register("churn", unknown, DEVELOPER)
