"""``GET /v1/predictions`` and ``POST /v1/feedback`` over a real control plane, both backends."""

from __future__ import annotations

import httpx

from control_plane.server import ControlPlaneServer
from modelyard.prediction_log import prediction_log, record_values
from modelyard.storage import Database
from tests.control_plane.conftest import admin_token
from tests.control_plane.predictions.test_prediction_service import record


async def _seed(server: ControlPlaneServer) -> None:
    # NOTE: as an inference server would, straight into the shared database.
    assert server.services is not None
    database: Database = server.services.database
    async with database.write() as conn:
        await conn.execute(
            prediction_log.insert(),
            [record_values(record(f"r{i}", variant="treatment")) for i in range(5)],
        )


async def test_predictions_need_a_token_and_page(control_plane: ControlPlaneServer) -> None:
    await _seed(control_plane)
    async with httpx.AsyncClient(base_url=control_plane.url) as anonymous:
        refused = await anonymous.get("/v1/predictions")
        assert refused.status_code == 401, refused.text
        assert "token" in refused.json()["error"]
    headers = {"Authorization": f"Bearer {admin_token(control_plane)}"}
    async with httpx.AsyncClient(base_url=control_plane.url, headers=headers) as client:
        first = await client.get("/v1/predictions", params={"model": "churn", "limit": 3})
        assert first.status_code == 200, first.text
        body = first.json()
        assert [item["request_id"] for item in body["items"]] == ["r0", "r1", "r2"]
        assert body["items"][0]["variant"] == "treatment"
        rest = await client.get(
            "/v1/predictions", params={"model": "churn", "cursor": body["next_cursor"]}
        )
        assert [item["request_id"] for item in rest.json()["items"]] == ["r3", "r4"]
        assert rest.json()["next_cursor"] is None
        bad = await client.get("/v1/predictions", params={"variant": "blue"})
        assert bad.status_code == 422
        assert "variant" in bad.json()["error"]
        window = await client.get(
            "/v1/predictions",
            params={"since": "2026-12-04T12:00:00", "until": "2026-12-05T00:00:00Z"},
        )
        assert len(window.json()["items"]) == 5


async def test_feedback_single_and_batched(control_plane: ControlPlaneServer) -> None:
    await _seed(control_plane)
    headers = {"Authorization": f"Bearer {admin_token(control_plane)}"}
    async with httpx.AsyncClient(base_url=control_plane.url) as anonymous:
        refused = await anonymous.post("/v1/feedback", json={"request_id": "r0", "label": 1})
        assert refused.status_code == 401
    async with httpx.AsyncClient(base_url=control_plane.url, headers=headers) as client:
        single = await client.post("/v1/feedback", json={"request_id": "r0", "label": 1})
        assert single.status_code == 200, single.text
        assert single.json() == {
            "accepted": 1,
            "replaced": 0,
            "repeated_in_batch": 0,
            "unmatched": 0,
        }
        batch = {
            "outcomes": [
                {"request_id": "r0", "label": 0},
                {"request_id": "r1", "conversion": True},
                {"request_id": "nope", "row_index": 2, "value": 9.5},
            ]
        }
        answer = await client.post("/v1/feedback", json=batch)
        assert answer.json() == {
            "accepted": 3,
            "replaced": 1,
            "repeated_in_batch": 0,
            "unmatched": 1,
        }
        for bad, message in [
            ({"request_id": "r0"}, "none of label"),
            ({"request_id": "r0", "label": 1, "extra": 2}, "extra"),
            ([1, 2], "JSON object"),
            ({"outcomes": []}, "outcomes"),
            ({"request_id": "", "label": 1}, "request_id"),
        ]:
            refused = await client.post("/v1/feedback", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert message in refused.json()["error"]
        not_json = await client.post(
            "/v1/feedback", content=b"{", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 422
