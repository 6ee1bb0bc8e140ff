"""The gRPC status table covers every error code, and retryable states stay retryable."""

from __future__ import annotations

import grpc

from inference_server.grpc.errors import GRPC_STATUS
from modelyard.errors import ErrorCode


def test_every_error_code_has_a_grpc_status() -> None:
    assert set(GRPC_STATUS) == set(ErrorCode)


def test_self_clearing_states_map_to_retryable_statuses() -> None:
    assert GRPC_STATUS[ErrorCode.UNAVAILABLE] is grpc.StatusCode.UNAVAILABLE
    assert GRPC_STATUS[ErrorCode.RESOURCE_EXHAUSTED] is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert GRPC_STATUS[ErrorCode.INVALID_ARGUMENT] is grpc.StatusCode.INVALID_ARGUMENT
