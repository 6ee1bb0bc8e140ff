"""The demo's monitoring loop: drifted traffic → drift report → alert → notification →
retraining → a better candidate in Staging, loaded by every server worker.

1. a local webhook receiver (standing in for a team's incident tool) is registered as a
   notification channel with an HMAC secret, and the model gets a retraining spec whose data is
   the latest labelled table (:mod:`examples.churn.retraining_data`);
2. traffic from a shifted population is scored, from the start of a sketch window of its own
   (the server keeps sketches per window, windows starting at multiples of their length: a
   window shared with the earlier steps' traffic would dilute the drift by however much of
   that traffic the machine managed to send);
3. ``POST .../drift-checks`` over that window: the control plane merges the servers' sketches
   and compares each feature with the version's training reference (Evidently's default tests);
4. the drift alert is delivered to the receiver (signature checked) and, because the model has
   a retraining spec, triggers a retraining run in a worker process;
5. the run trains, converts, evaluates candidate and Production on one holdout, registers the
   candidate and promotes it to Staging when it is better (else says why not); the server
   hot-loads the published candidate.
"""

from __future__ import annotations

import asyncio
import hmac
import http.server
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pandas as pd

from examples.churn.retraining_data import ENTRY_POINT
from modelyard.datasets.churn import LABEL

SECRET = "demo-webhook-secret"
DRIFT_SHARE = 0.25
"""The demo's drift policy: the dataset drifts when a quarter of its features do (Evidently's
default is half; the churn model has many one-hot features that a market change leaves alone)."""
TERMINAL = ("promoted", "rejected", "failed")


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: queue.Queue[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.put((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    """A local HTTP endpoint that records every POST; its URL and the queue of deliveries."""
    received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(_Receiver):
        pass

    Handler.received = received
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


def _checked(answer: httpx.Response) -> Any:
    if answer.is_error:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}: "
            f"{answer.text[:500]}"
        )
    return answer.json() if answer.content else None


def _verified(headers: dict[str, str], body: bytes) -> bool:
    from control_plane.monitoring.senders import signature

    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get("x-modelyard-timestamp", "")
    expected = signature(SECRET, stamp, body)
    return hmac.compare_digest(expected, lowered.get("x-modelyard-signature", ""))


async def _score_drifted(server: str, model: str, features: pd.DataFrame) -> int:
    rows = features.to_dict(orient="records")
    async with httpx.AsyncClient(base_url=server, timeout=60) as client:
        for start in range(0, len(rows), 250):
            _checked(
                await client.post(
                    "/predict/batch", params={"model": model}, json=rows[start : start + 250]
                )
            )
    return len(rows)


def _drift_delivery(
    deliveries: queue.Queue[tuple[dict[str, str], bytes]], timeout: float
) -> tuple[dict[str, str], bytes, dict[str, Any]]:
    """The first delivered drift-check alert (streaming-detector alerts may arrive first)."""
    deadline = time.monotonic() + timeout
    while True:
        headers, body = deliveries.get(timeout=max(0.1, deadline - time.monotonic()))
        alert: dict[str, Any] = json.loads(body)["alert"]
        if alert["type"] == "drift":
            return headers, body, alert


def _wait_for_run(client: httpx.Client, model: str, seen: set[str], timeout: float) -> Any:
    """The retraining run the alert started, once it ended (it runs in another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [
            r
            for r in _checked(client.get("/v1/retraining/runs", params={"model": model}))
            if r["id"] not in seen
        ]
        if runs and runs[0]["status"] in TERMINAL:
            return runs[0]
        time.sleep(1.0)  # a worker process records its steps; its record is the signal
    raise RuntimeError(f"no retraining run of {model} ended within {timeout:.0f} s")


def run_monitoring_loop(
    *,
    control_plane: str,
    admin: dict[str, str],
    developer: dict[str, str],
    server_http: str,
    server_admin: dict[str, str],
    model: str,
    version: int,
    drifted: pd.DataFrame,
    sketch_window_s: float,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Run the loop (see the module docstring); what happened, with the numbers."""
    with (
        webhook_receiver() as (url, deliveries),
        httpx.Client(base_url=control_plane, timeout=120) as client,
    ):
        channel = {"name": "demo-webhook", "kind": "webhook", "target": url, "secret": SECRET}
        _checked(client.post("/v1/monitoring/channels", json=channel, headers=admin))
        spec = {
            "data": ENTRY_POINT,
            "target": LABEL,
            "trainer": "lightgbm",
            "params": {"n_estimators": 150, "num_leaves": 31},
            "min_improvement": 0.005,
            "scheduled": False,
        }
        _checked(client.put(f"/v1/retraining/specs/{model}", json=spec, headers=developer))
        policy = {"drift_share": DRIFT_SHARE}
        _checked(
            client.put(
                f"/v1/monitoring/models/{model}/drift-policy", json=policy, headers=developer
            )
        )
        say(
            f"webhook channel {url} (HMAC-signed); retraining spec: LightGBM on {ENTRY_POINT}, "
            f"must beat Production by 0.005 AUC; drift policy: dataset drift at "
            f"{DRIFT_SHARE:.0%} of the features"
        )
        seen = {
            r["id"]
            for r in _checked(
                client.get("/v1/retraining/runs", headers=developer, params={"model": model})
            )
        }
        since = _next_window(sketch_window_s)
        say(f"waiting {since - time.time():.1f} s for a fresh sketch window (drifted traffic only)")
        time.sleep(max(since - time.time(), 0.0))  # NOTE: the server's windows follow the clock
        scored = asyncio.run(_score_drifted(server_http, model, drifted))
        say(f"{scored:,} requests from the shifted population scored")
        window = {"since": _iso(since), "until": _iso(time.time() + 1.0)}
        path = f"/v1/monitoring/models/{model}/versions/{version}/drift-checks"
        report = _checked(client.post(path, json=window, headers=developer))
        flagged = [f for f in report["result"]["features"] if f["drifted"]]
        say(
            f"drift report {report['id']}: {len(flagged)} of {len(report['result']['features'])}"
            f" features drifted ({report['share']:.0%}), dataset drift {report['drifted']}, "
            f"{report['rows']:,} served rows; page {control_plane}/v1/monitoring/drift-reports/"
            f"{report['id']}/html"
        )
        for feature in flagged[:3]:
            say(
                f"  {feature['feature']}: {feature['method']} {feature['score']:.3g} "
                f"(threshold {feature['threshold']})"
            )
        headers, body, alert = _drift_delivery(deliveries, timeout=60)
        say(
            f"alert {alert['id']} ({alert['type']}, {alert['severity']}) delivered to the "
            f"webhook; signature valid: {_verified(headers, body)}"
        )
        client.headers.update(developer)
        run = _wait_for_run(client, model, seen, timeout=600)
        say(
            f"retraining run {run['id']} (triggered by {run['trigger']['trigger_type']}): "
            f"{run['status']} — {run.get('decision') or run.get('error')}"
        )
        candidate = run.get("candidate_version")
        ready = False
        if run["status"] == "promoted" and candidate is not None:
            loaded = _checked(
                httpx.post(
                    f"{server_http}/v2/repository/models/{model}/load",
                    headers=server_admin,
                    timeout=120,
                )
            )
            ready = (
                httpx.get(
                    f"{server_http}/v2/models/{model}/versions/{candidate}/ready", timeout=30
                ).status_code
                == 200
            )
            say(
                f"candidate v{candidate} in Staging, loaded by {loaded['workers_applied']} "
                f"workers: ready {ready}"
            )
    return {
        "report": {k: report[k] for k in ("id", "drifted", "share", "rows")},
        "report_page": f"{control_plane}/v1/monitoring/drift-reports/{report['id']}/html",
        "drifted_features": [f["feature"] for f in flagged],
        "alert": {k: alert[k] for k in ("id", "type", "severity")},
        "signature_valid": _verified(headers, body),
        "retraining": {
            k: run.get(k) for k in ("id", "status", "decision", "candidate_version", "comparison")
        },
        "candidate_ready": ready,
    }


def _next_window(length_s: float) -> float:
    """When the next sketch window starts (epoch seconds; windows start at multiples of their
    length, UTC), plus a margin for the server's and this process's clocks reading apart.

    >>> _next_window(5.0) % 5.0 < 0.2
    True
    """
    return (time.time() // length_s + 1) * length_s + 0.1  # the server's window: t // length


def _iso(seconds: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
