"""Locust gRPC load test (Open Inference Protocol ModelInfer) with SLA assertions.

grpc is switched to gevent before use so locust's greenlets can share one channel per user;
each call fires a locust ``request`` event (name ``ModelInfer``, the latency, the error) so the
usual statistics and the SLA check apply. The request (one row, raw FP32 tensor) is serialized
once and sent as bytes.

Run: ``python -m locust -f benchmarks/locust/grpc_user.py --headless --host 127.0.0.1:8001
-u 16 -r 16 -t 20s --target-rps 1000 --sla-p99-ms 25``.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import grpc.experimental.gevent as grpc_gevent  # type: ignore[import-not-found]
from locust import User, events, task

from benchmarks.messages import INFER_METHOD, grpc_infer_request
from benchmarks.sla import add_sla_options, check_sla, pacing, sample_rows

grpc_gevent.init_gevent()


def _options(parser: Any) -> None:
    add_sla_options(parser)


events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.quitting.add_listener(check_sla)  # type: ignore[no-untyped-call]


class GrpcInferenceUser(User):
    """One client sending single-row ModelInfer calls over its own channel."""

    def wait_time(self) -> float:
        """Pace to ``--target-rps`` over all users (0: back to back)."""
        return pacing(self)

    def on_start(self) -> None:
        """Open the channel and serialize the request once."""
        target = (self.host or "127.0.0.1:8001").removeprefix("http://")
        self._channel = grpc.insecure_channel(target)
        self._infer = self._channel.unary_unary(INFER_METHOD, None, None)
        model = self.environment.parsed_options.model
        self._payload = grpc_infer_request(sample_rows(), model)

    def on_stop(self) -> None:
        """Close the channel."""
        self._channel.close()

    @task
    def infer(self) -> None:
        """One ModelInfer call, reported to locust as a request event."""
        started = time.perf_counter()
        error: Exception | None = None
        length = 0
        try:
            length = len(self._infer(self._payload, timeout=10))
        except grpc.RpcError as exc:
            error = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name="ModelInfer",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=error,
            context={},
        )
