"""The tracking REST API over a real control plane (each storage backend)."""

from __future__ import annotations

import httpx

from control_plane.server import ControlPlaneServer
from control_plane.tracking.tracker import ExperimentTracker


def seed_runs(tracker: ExperimentTracker) -> list[str]:
    ids = []
    for auc, model in ((0.7, "lr"), (0.9, "lgbm"), (0.8, "xgb")):
        with tracker.start_run("churn", run_name=model) as run:
            run.log_params({"model": model})
            run.log_metrics({"auc": auc})
        ids.append(run.run_id)
    with tracker.start_run("churn", run_name="bare") as bare:
        bare.log_params({"note": "no metrics"})
    return [*ids, bare.run_id]


async def test_list_search_get_and_compare(control_plane: ControlPlaneServer) -> None:
    assert control_plane.services is not None
    lr, lgbm, xgb, bare = seed_runs(control_plane.services.tracker)
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=30) as client:
        experiments = (await client.get("/v1/experiments")).json()
        assert "churn" in [item["name"] for item in experiments]
        ordered = await client.get(
            "/v1/runs",
            params={"experiment": "churn", "order_by": "metrics.auc DESC", "max_results": 10},
        )
        assert [run["run_id"] for run in ordered.json()] == [lgbm, xgb, lr, bare]
        filtered = await client.get("/v1/runs", params={"filter": "params.model = 'xgb'"})
        assert [run["run_id"] for run in filtered.json()] == [xgb]
        run = (await client.get(f"/v1/runs/{lgbm}")).json()
        assert (run["params"], run["metrics"], run["status"]) == (
            {"model": "lgbm"},
            {"auc": 0.9},
            "FINISHED",
        )
        compared = await client.get("/v1/runs/compare", params={"run_id": [lr, bare]})
        assert compared.json()["params"] == {"model": ["lr", None], "note": [None, "no metrics"]}
        assert compared.json()["metrics"] == {"auc": [0.7, None]}


async def test_bad_input_is_a_4xx_json_error(control_plane: ControlPlaneServer) -> None:
    async with httpx.AsyncClient(base_url=control_plane.url, timeout=30) as client:
        bad_filter = await client.get("/v1/runs", params={"filter": "metrics.auc >"})
        assert bad_filter.status_code == 422
        assert bad_filter.json()["code"] == "invalid_argument"
        assert "invalid filter 'metrics.auc >'" in bad_filter.json()["error"]
        bad_order = await client.get("/v1/runs", params={"order_by": "metrics.auc upward"})
        assert bad_order.status_code == 422
        assert "metrics.auc upward" in bad_order.json()["error"]
        unknown = await client.get("/v1/runs/0123456789abcdef")
        assert unknown.status_code == 404
        assert unknown.json() == {
            "error": "run '0123456789abcdef' not found",
            "code": "not_found",
        }
        compare = await client.get("/v1/runs/compare", params={"run_id": ["nope"]})
        assert compare.status_code == 404
        assert "nope" in compare.json()["error"]
        missing_experiment = await client.get("/v1/runs", params={"experiment": "ghost"})
        assert missing_experiment.status_code == 404
        assert (await client.get("/health")).status_code == 200
