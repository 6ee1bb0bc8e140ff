"""The hot-path half of the prediction log: sample, then append one tuple to a deque.

Everything on the request path is O(1) and allocation-light: the service calls
:meth:`Capture.record` with the arrays it already holds (no copy, no JSON, no I/O); the
spooler thread (:mod:`inference_server.prediction_log.writer`) turns the tuples into records
every flush interval. ``collections.deque.append`` / ``popleft`` are atomic in CPython, so the
event loop and the spooler thread share the buffer without a lock.

The buffer is bounded by ``buffer_capacity`` requests. When it is full the configured overflow
policy applies: ``drop`` drops the record (the answer still goes out) and counts it;
``reject`` makes :meth:`Capture.check_room` refuse new requests with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from inference_server.routing import ROUTING_KEY
from modelyard.enums import ModelVariant
from modelyard.errors import InvalidArgument, ResourceExhausted

if TYPE_CHECKING:
    import numpy as np

    from inference_server.core.types import InferRequest
    from inference_server.loaded_version import LoadedVersion
    from modelyard.settings import PredictionLogSettings

SHADOW = ModelVariant.SHADOW.value

MAX_ID_LENGTH = 128
"""Longest request id the log stores (the ``request_id`` column)."""

MAX_KEY_LENGTH = 256
"""Longest routing key the log stores (the ``routing_key`` column)."""


class Captured(NamedTuple):
    """One answered request on one version, as the hot path hands it over."""

    request_id: str
    wall_time: float
    handle: LoadedVersion
    variant: str
    routing_key: str | None
    shadow: bool
    protocol: str
    latency_ms: float
    inputs: list[np.ndarray]
    rows: int
    outputs: list[np.ndarray]


class Capture:
    """The per-worker buffer between the request path and the spool.

    Args:
        settings: the log's settings (capacity, overflow policy).
    """

    def __init__(self, settings: PredictionLogSettings) -> None:
        self.buffer: deque[Captured] = deque()
        self._capacity = settings.buffer_capacity
        self._reject = settings.overflow == "reject"
        self._seen: dict[str, int] = {}
        # NOTE: a random 64-bit prefix per process plus a counter: unique across workers and
        # restarts like a uuid4, at a twentieth of uuid4's cost on the request path.
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count()
        self.buffered = 0
        """Requests appended to the buffer (loop thread only)."""
        self.dropped = 0
        """Requests whose records were dropped because the buffer was full."""

    def admit(self, request: InferRequest) -> str:
        """The id to log and return: the client's, else a fresh one.

        Raises:
            InvalidArgument: the client's id is longer than 128 characters, or its routing key
                longer than 256, or either holds NUL (the log's columns could not store it).
        """
        key = request.parameters.get(ROUTING_KEY)
        if isinstance(key, str) and (len(key) > MAX_KEY_LENGTH or "\x00" in key):
            raise InvalidArgument(
                f"routing_key must be at most {MAX_KEY_LENGTH} characters without NUL "
                f"(got {len(key)} characters)"
            )
        given = request.id
        if not given:
            return f"{self._id_prefix}{next(self._ids):016x}"
        if len(given) > MAX_ID_LENGTH or "\x00" in given:
            raise InvalidArgument(
                f"request id must be at most {MAX_ID_LENGTH} characters without NUL "
                f"(got {len(given)} characters)"
            )
        return given

    def check_room(self) -> None:
        """Refuse a new request while the buffer is full under the ``reject`` policy.

        Raises:
            ResourceExhausted: the buffer is full and the overflow policy is ``reject``.
        """
        if self._reject and len(self.buffer) >= self._capacity:
            raise ResourceExhausted(
                "the prediction log's buffer is full (database or disk too slow); retry"
            )

    def sampled(self, handle: LoadedVersion) -> bool:
        """Whether to record this request on ``handle``'s model (config.json sampling)."""
        policy = handle.config.prediction_log
        if policy.every == 1 and policy.share >= 1.0:
            return policy.enabled
        if not policy.enabled:
            return False
        if policy.every > 1:
            seen = self._seen.get(handle.name, 0)
            self._seen[handle.name] = seen + 1
            if seen % policy.every:
                return False
        return policy.share >= 1.0 or random.random() < policy.share

    def record(
        self,
        request: InferRequest,
        handle: LoadedVersion,
        variant: str,
        seconds: float,
        arrays: tuple[list[np.ndarray], int, list[np.ndarray]],
    ) -> None:
        """Buffer one answered request (``arrays``: inputs, rows, outputs), or count a drop."""
        if len(self.buffer) >= self._capacity:
            self.dropped += 1
            return
        inputs, rows, outputs = arrays
        key = request.parameters.get(ROUTING_KEY)
        self.buffer.append(
            Captured(
                request.id,
                time.time(),
                handle,
                variant,
                None if key is None else str(key),
                variant == SHADOW,
                request.protocol,
                seconds * 1000.0,
                inputs,
                rows,
                outputs,
            )
        )
        self.buffered += 1


__all__ = ["MAX_ID_LENGTH", "MAX_KEY_LENGTH", "Capture", "Captured"]
