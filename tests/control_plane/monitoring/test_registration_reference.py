"""A version registered over REST with its training sample gets its reference profile at
registration (both backends); a malformed sample registers nothing."""

from __future__ import annotations

import httpx
import msgspec
import numpy as np

from control_plane.server import ControlPlaneServer
from tests.control_plane.conftest import admin_token
from tests.control_plane.monitoring.drift_helpers import sample, scores
from tests.control_plane.registry.helpers import registration, with_lineage_features


async def test_registration_with_a_sample_stores_the_reference(
    monitored_plane: ControlPlaneServer,
) -> None:
    services = monitored_plane.services
    assert services is not None
    await with_lineage_features(monitored_plane)
    rng = np.random.default_rng(8)
    body = msgspec.to_builtins(registration())
    admin = {"Authorization": f"Bearer {admin_token(monitored_plane)}"}
    async with httpx.AsyncClient(base_url=monitored_plane.url, timeout=60) as client:
        ragged = {**body, "reference_sample": {"a": [1.0, 2.0], "b": [1.0]}}
        refused = await client.post("/v1/models/churn/versions", json=ragged, headers=admin)
        assert refused.status_code == 422, refused.text
        assert (await client.get("/v1/models/churn/versions/1")).status_code == 404
        good = {**body, "reference_sample": sample(rng, 300), "reference_score": scores(rng, 300)}
        created = await client.post("/v1/models/churn/versions", json=good, headers=admin)
        assert created.status_code == 201, created.text
        version = created.json()["version"]
        reference = await client.get(f"/v1/monitoring/models/churn/versions/{version}/reference")
        assert reference.status_code == 200
        profile = reference.json()
        assert profile["rows"] == 300
        assert set(profile["features"]) == {"tenure", "charges", "plan"}
        assert profile["score"]["n"] == 300
