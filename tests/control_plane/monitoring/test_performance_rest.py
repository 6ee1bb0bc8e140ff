"""Performance tracking over REST on a real control plane (port 0), both backends: outcomes
through ``POST /v1/feedback``, a window tracked against the card's baseline, the series read
back, and the degradation alert listed."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx

from control_plane.server import ControlPlaneServer
from modelyard.prediction_log import PredictionRecord, prediction_log, record_values
from tests.control_plane.conftest import admin_token
from tests.control_plane.monitoring.helpers import T0
from tests.control_plane.registry.helpers import (
    DEVELOPER,
    card,
    registration,
    with_lineage_features,
)

WINDOW = {"since": "2026-12-04T11:00:00Z", "until": "2026-12-04T12:00:00Z"}


async def test_performance_over_rest(monitored_plane: ControlPlaneServer) -> None:
    services = monitored_plane.services
    assert services is not None
    await with_lineage_features(monitored_plane)
    metrics = [{"type": "accuracy", "value": 0.95}]
    model = await services.registry.register(
        "churn", registration(card=card(metrics=metrics)), DEVELOPER
    )
    records = [
        PredictionRecord(
            request_id=f"q{i}-{uuid.uuid4().hex[:6]}",
            row_index=0,
            created_at=T0 - dt.timedelta(minutes=30),
            model="churn",
            version=model.version,
            variant="none",
            protocol="http",
            latency_ms=1.0,
            inputs={"x": i},
            outputs={"label": 1, "probabilities": [0.3, 0.7]},
        )
        for i in range(40)
    ]
    async with services.database.write() as conn:
        await conn.execute(prediction_log.insert(), [record_values(r) for r in records])
    admin = {"Authorization": f"Bearer {admin_token(monitored_plane)}"}
    # half the rows were truly positive: accuracy 0.5 against a 0.95 baseline
    outcomes = [{"request_id": r.request_id, "label": i % 2} for i, r in enumerate(records)]
    base = f"/v1/monitoring/models/churn/versions/{model.version}/performance"
    async with httpx.AsyncClient(base_url=monitored_plane.url, timeout=60) as client:
        fed = await client.post("/v1/feedback", json={"outcomes": outcomes}, headers=admin)
        assert fed.status_code == 200, fed.text
        spec = {"min_samples": 20, "threshold": 0.1}
        assert (
            await client.put(
                "/v1/monitoring/models/churn/performance-spec", json=spec, headers=admin
            )
        ).status_code == 200
        bad = await client.put(
            "/v1/monitoring/models/churn/performance-spec", json={"task": "ranking"}, headers=admin
        )
        assert bad.status_code in (400, 422)
        tracked = await client.post(base, json=WINDOW, headers=admin)
        assert tracked.status_code == 201, tracked.text
        result = tracked.json()
        assert result["n"] == 40
        assert result["metrics"]["accuracy"] == 0.5
        assert result["degraded"] == ["accuracy"]
        series = (
            await client.get(
                "/v1/monitoring/models/churn/performance", params={"metric": "accuracy"}
            )
        ).json()
        assert [(p["value"], p["n"]) for p in series] == [(0.5, 40)]
        alerts = (
            await client.get("/v1/monitoring/alerts", params={"type": "performance_degradation"})
        ).json()
        assert [a["id"] for a in alerts] == [result["alert_id"]]
        assert alerts[0]["details"][0]["baseline"] == 0.95
