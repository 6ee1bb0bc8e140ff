"""The demo's A/B test: the Production version (control) against the runner-up (treatment).

1. ``POST /v1/ab-tests``: 50/50, primary metric ``accuracy`` (the predicted label matches the
   customer's real outcome), latency as a guardrail; the control plane writes the route and
   pushes it to the inference server (every worker applies it before the call returns);
2. keyed traffic: ``POST /predict?routing_key=<customer_id>``; each answer says its request id
   and the variant that served it (the same key always gets the same variant);
3. outcomes: ``POST /v1/feedback`` with each request id and the customer's true label (in real
   life these arrive later, from the CRM);
4. the servers' prediction logs are flushed (``POST /v2/prediction_log/flush``), then
   ``GET /v1/ab-tests/{id}/report`` gives per-variant metrics and the recommendation;
5. the test is concluded on the control version (promoting the treatment would need its card
   approved: ``POST /v1/ab-tests/{id}/promote``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd

FEEDBACK_BATCH = 500


def _checked(answer: httpx.Response) -> Any:
    if answer.is_error:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}: "
            f"{answer.text[:500]}"
        )
    return answer.json()


def definition(model: str, control: int, treatment: int, minimum: int) -> dict[str, Any]:
    """The test: accuracy decides, latency must not get worse."""
    return {
        "model": model,
        "variants": [
            {"version": control, "weight": 0.5, "role": "control"},
            {"version": treatment, "weight": 0.5, "role": "treatment"},
        ],
        "primary_metric": {"name": "accuracy", "kind": "label_match", "output": "label"},
        "guardrail_metrics": [{"name": "latency", "kind": "latency_ms", "higher_is_better": False}],
        "minimum_sample_size": minimum,
        "alpha": 0.05,
        "mode": "fixed",
        "routing_key_field": "customer_id",
        "description": "modelyard demo: production model vs runner-up",
    }


async def _send(
    client: httpx.AsyncClient, model: str, keys: list[str], rows: pd.DataFrame, concurrency: int
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = [{} for _ in keys]
    records = rows.to_dict(orient="records")
    next_index = iter(range(len(keys)))

    async def user() -> None:
        for i in next_index:
            params = {"model": model, "routing_key": keys[i]}
            answers[i] = _checked(await client.post("/predict", params=params, json=records[i]))

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return answers


async def run_ab_test(
    *,
    control_plane: str,
    developer: dict[str, str],
    server_http: str,
    server_admin: dict[str, str],
    model: str,
    control: int,
    treatment: int,
    customers: pd.DataFrame,
    features: pd.DataFrame,
    labels: np.ndarray,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Run the test on ``customers`` (their engineered ``features`` and true ``labels``)."""
    keys = customers["customer_id"].astype(str).tolist()
    async with (
        httpx.AsyncClient(base_url=control_plane, headers=developer, timeout=120) as cp,
        httpx.AsyncClient(base_url=server_http, timeout=60) as server,
    ):
        body = definition(model, control, treatment, minimum=max(50, len(keys) // 4))
        created = _checked(await cp.post("/v1/ab-tests", json=body))
        test_id = created["test"]["id"]
        applied = [s for s in created["servers"] if s["applied"]]
        workers = sum(s["workers_applied"] or 0 for s in applied)
        say(
            f"A/B test {test_id}: v{control} (control) vs v{treatment} (treatment), 50/50; "
            f"route applied by {len(applied)} server(s), {workers} worker(s)"
        )
        answers = await _send(server, model, keys, features, concurrency=8)
        served = {
            v: sum(1 for a in answers if a.get("variant") == v) for v in ("control", "treatment")
        }
        sticky = await _send(server, model, keys[:50], features.iloc[:50], concurrency=4)
        assert all(a["variant"] == b["variant"] for a, b in zip(answers, sticky, strict=False))
        say(
            f"{len(keys):,} keyed requests: control {served['control']:,}, treatment "
            f"{served['treatment']:,}; the same customer always gets the same variant"
        )
        outcomes = [
            {"request_id": a["id"], "label": int(label)}
            for a, label in zip(answers, labels, strict=True)
        ]
        for start in range(0, len(outcomes), FEEDBACK_BATCH):
            batch = {"outcomes": outcomes[start : start + FEEDBACK_BATCH]}
            _checked(await cp.post("/v1/feedback", json=batch))
        flushed = _checked(await server.post("/v2/prediction_log/flush", headers=server_admin))
        say(
            f"{len(outcomes):,} outcomes fed back; prediction log flushed "
            f"({flushed['shipped']} records shipped by {flushed['workers_applied']} workers)"
        )
        report = _checked(await cp.get(f"/v1/ab-tests/{test_id}/report"))
        for variant in report["variants"]:
            accuracy = next(m for m in variant["metrics"] if m["name"] == "accuracy")["mean"]
            shown = (
                "n/a"
                if accuracy is None
                else (f"{accuracy['estimate']:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}]")
            )
            say(
                f"  v{variant['version']} ({variant['role']}): {variant['requests']:,} requests, "
                f"{variant['outcomes']:,} outcomes, accuracy {shown}"
            )
        recommendation = report["recommendation"]
        say(
            f"recommendation: {recommendation['action']} ({recommendation['reason']}): "
            f"{recommendation['detail']}"
        )
        _checked(
            await cp.post(
                f"/v1/ab-tests/{test_id}/conclude",
                json={"version": control, "reason": "demo: keep Production"},
            )
        )
        say(f"concluded on v{control}: 100% of traffic back to the Production version")
    return {
        "test_id": test_id,
        "served": served,
        "outcomes": len(outcomes),
        "recommendation": recommendation,
        "variants": report["variants"],
        "page": f"{control_plane}/v1/ab-tests/{test_id}/page",
    }
