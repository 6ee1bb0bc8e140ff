"""Monitoring over REST on a real control plane (port 0), both backends: alerts listed,
acknowledged and resolved; channels managed by admins; notifications delivered by the app's
dispatcher; dead letters listed; counters on /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from control_plane.server import ControlPlaneServer
from tests.control_plane.conftest import admin_token
from tests.control_plane.monitoring.helpers import drift_candidate
from tests.control_plane.monitoring.receivers import HttpReceiver


async def _eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_alerts_channels_and_dead_letters_over_rest(
    monitored_plane: ControlPlaneServer,
) -> None:
    services = monitored_plane.services
    assert services is not None
    good, bad = HttpReceiver(), HttpReceiver(fail_first=100)
    await good.start()
    await bad.start()
    admin = {"Authorization": f"Bearer {admin_token(monitored_plane)}"}
    try:
        async with httpx.AsyncClient(base_url=monitored_plane.url, timeout=30) as client:
            channel = {"name": "hook", "kind": "webhook", "target": good.url, "secret": "k"}
            assert (await client.post("/v1/monitoring/channels", json=channel)).status_code == 401
            created = await client.post("/v1/monitoring/channels", json=channel, headers=admin)
            assert created.status_code == 201, created.text
            assert created.json()["signed"] is True
            assert "secret" not in created.json()
            broken = {"name": "broken", "kind": "slack", "target": bad.url}
            assert (
                await client.post("/v1/monitoring/channels", json=broken, headers=admin)
            ).status_code == 201
            unknown_field = {**channel, "name": "x", "colour": "red"}
            answer = await client.post("/v1/monitoring/channels", json=unknown_field, headers=admin)
            assert answer.status_code in (400, 422)
            assert "colour" in answer.text
            bad_target = {"name": "y", "kind": "email", "target": "nobody"}
            answer = await client.post("/v1/monitoring/channels", json=bad_target, headers=admin)
            assert answer.status_code == 422
            assert "nobody" in answer.json()["error"]

            alert, _ = await services.monitoring.alerts.raise_alert(drift_candidate())
            listed = (await client.get("/v1/monitoring/alerts", params={"model": "churn"})).json()
            assert [a["id"] for a in listed] == [alert.id]
            assert listed[0]["details"][0]["feature"] == "tenure"

            async def delivered() -> bool:
                path = f"/v1/monitoring/alerts/{alert.id}/deliveries"
                states = {d["channel"]: d["state"] for d in (await client.get(path)).json()}
                return states == {"hook": "delivered", "broken": "dead"}

            await _eventually(delivered)
            assert len(good.requests) == 1
            assert len(bad.requests) == 3
            dead = (await client.get("/v1/monitoring/dead-letters")).json()
            assert [d["channel"] for d in dead] == ["broken"]
            assert [a["ok"] for a in dead[0]["history"]] == [False, False, False]

            path = f"/v1/monitoring/alerts/{alert.id}"
            assert (await client.post(f"{path}/acknowledge")).status_code == 401
            acked = await client.post(f"{path}/acknowledge", headers=admin)
            assert acked.status_code == 200
            assert acked.json()["state"] == "acknowledged"
            resolved = await client.post(f"{path}/resolve", headers=admin)
            assert resolved.json()["state"] == "resolved"
            again = await client.post(f"{path}/resolve", headers=admin)
            assert again.status_code == 409
            assert (await client.get("/v1/monitoring/alerts/999")).status_code == 404
            bad_filter = await client.get("/v1/monitoring/alerts", params={"state": "sleeping"})
            assert bad_filter.status_code in (400, 422)

            metrics = (await client.get("/metrics")).text
            assert 'modelyard_alerts_total{severity="warning",type="drift"} 1.0' in metrics
            assert 'modelyard_notifications_total{kind="slack",state="dead"} 1.0' in metrics
            assert 'modelyard_notification_attempts_total{kind="slack",outcome="error"} 3.0' in (
                metrics
            )
            gone = await client.delete("/v1/monitoring/channels/broken", headers=admin)
            assert gone.status_code == 204
            names = [c["name"] for c in (await client.get("/v1/monitoring/channels")).json()]
            assert names == ["hook"]
    finally:
        await good.stop()
        await bad.stop()
