"""Locust HTTP load test with SLA assertions against a running modelyard server.

Sends one-row V2 JSON inference requests (and, with weight 1 in 4, simple ``/predict`` rows)
with locust's FastHttpUser. Pacing: ``--target-rps`` spreads a total request rate over the
users. At the end, the SLA (``--sla-p99-ms``, ``--sla-max-error-rate``, ``--sla-min-rps``) is
checked and the exit code is non-zero on a violation.

Run: ``python -m locust -f benchmarks/locust/http_user.py --headless --host
http://127.0.0.1:8000 -u 16 -r 16 -t 20s --target-rps 1000 --sla-p99-ms 10``.
Add ``--no-predict`` for servers without ``/predict`` (e.g. the echo and naive servers).
"""

from __future__ import annotations

import json
from typing import Any

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from benchmarks.sla import add_sla_options, check_sla, pacing, sample_rows

ROW = [float(v) for v in sample_rows()[0]]
V2_BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 32], "datatype": "FP32", "data": ROW}]}
)
PREDICT_BODY = json.dumps(ROW)
HEADERS = {"Content-Type": "application/json"}


def _options(parser: Any) -> None:
    add_sla_options(parser)
    parser.add_argument("--no-predict", action="store_true", help="skip POST /predict")


events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.quitting.add_listener(check_sla)  # type: ignore[no-untyped-call]


class InferenceUser(FastHttpUser):
    """One client sending single-row inference requests."""

    def wait_time(self) -> float:
        """Pace to ``--target-rps`` over all users (0: back to back)."""
        return pacing(self)

    @task(3)
    def infer_v2(self) -> None:
        """POST /v2/models/{model}/infer with a one-row FP32 tensor."""
        model = self.environment.parsed_options.model
        self.client.post(
            f"/v2/models/{model}/infer",
            data=V2_BODY,
            headers=HEADERS,
            name="/v2/models/[model]/infer",
        )

    @task(1)
    def predict(self) -> None:
        """POST /predict?model=... with one row as a list of feature values."""
        if self.environment.parsed_options.no_predict:
            self.infer_v2()
            return
        model = self.environment.parsed_options.model
        self.client.post(
            f"/predict?model={model}", data=PREDICT_BODY, headers=HEADERS, name="/predict"
        )
