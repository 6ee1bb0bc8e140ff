"""Airflow 3 DAG: check drift → retrain → evaluate → deploy, through modelyard's REST API.

For teams that orchestrate with Airflow instead of (or beside) the control plane's built-in
scheduler. Every task is an HTTP call to the control plane; the DAG imports nothing of
modelyard, so it runs in any Airflow 3 deployment (standard library only).

Configuration (Airflow Variables, or the DAG run's params):
    modelyard_url      control plane base URL, e.g. ``http://control-plane:8080``
    modelyard_token    an API token with the developer role (Variables are masked in logs)
    params.model       the model to retrain (default ``churn``)

Tasks:
    check_drift   drift check of the Production version's recent traffic
                  (``POST /v1/monitoring/models/{m}/versions/{v}/drift-checks``)
    retrain       ``POST /v1/retraining/runs`` (trigger ``drift`` when drift was found, else
                  ``schedule``); an already running retraining of the model is joined
    evaluate      waits for the run; the control plane evaluates the candidate and Production
                  on one holdout and decides
    deploy        a promoted candidate is in Staging and published to the model repository;
                  Production still needs an approved model card (a person), so this task
                  reports the outcome and fails the DAG run if the retraining failed
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pendulum
from airflow.sdk import Param, Variable, dag, get_current_context, task

TERMINAL = ("promoted", "rejected", "failed")


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = Variable.get("modelyard_url", default="http://127.0.0.1:8080").rstrip("/")
    token = Variable.get("modelyard_token", default="")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def _model() -> str:
    return str(get_current_context()["params"]["model"])


@dag(
    dag_id="modelyard_retraining",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 5, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"model": Param("churn", type="string", description="the model to retrain")},
    tags=["modelyard", "retraining"],
    doc_md=__doc__,
)
def modelyard_retraining() -> None:
    @task
    def check_drift() -> dict[str, Any]:
        model = _model()
        production = _call("GET", f"/v1/models/{model}/latest?stage=Production")
        version = production["version"]
        report = _call("POST", f"/v1/monitoring/models/{model}/versions/{version}/drift-checks", {})
        return {
            "model": model,
            "version": version,
            "drifted": bool(report["drifted"]),
            "share": report["share"],
            "report": report["id"],
        }

    @task
    def retrain(drift: dict[str, Any]) -> str:
        kind = "drift" if drift["drifted"] else "schedule"
        reason = (
            f"Airflow: drift report {drift['report']} ({drift['share']:.0%} of features)"
            if drift["drifted"]
            else "Airflow weekly schedule"
        )
        run = _call(
            "POST",
            "/v1/retraining/runs",
            {"model": drift["model"], "trigger_type": kind, "reason": reason},
        )
        return str(run["id"])

    @task(execution_timeout=pendulum.duration(hours=6))
    def evaluate(run_id: str) -> dict[str, Any]:
        while True:
            run = _call("GET", f"/v1/retraining/runs/{run_id}")
            if run["status"] in TERMINAL:
                return {
                    "id": run_id,
                    "status": run["status"],
                    "decision": run.get("decision"),
                    "error": run.get("error"),
                    "candidate": run.get("candidate_version"),
                    "comparison": run.get("comparison"),
                }
            time.sleep(30)  # the run executes in the control plane; poll its record

    @task
    def deploy(result: dict[str, Any]) -> str:
        if result["status"] == "failed":
            raise RuntimeError(f"retraining run {result['id']} failed: {result['error']}")
        if result["status"] == "rejected":
            return f"candidate v{result['candidate']} rejected: {result['decision']}"
        return (
            f"candidate v{result['candidate']} in Staging and published: "
            f"{result['decision']}; promote to Production after its card is approved"
        )

    deploy(evaluate(retrain(check_drift())))


modelyard_retraining()
