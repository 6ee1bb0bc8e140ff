"""Cost of the prediction log's request-path hook, and of the spooler's encoding per row.

``python -m benchmarks.prediction_log_hook [--requests N] [--rounds R]`` times what
:class:`~inference_server.service.InferenceService` adds to one answered request with
the log on (``Capture.check_room``, ``request_id``, ``sampled``, ``record``), and separately
what the spooler thread spends per row (``pass_blocks`` and the spool encoding, in passes
of 1,024 requests), on a one-row, four-feature classifier answer. Not a test: numbers depend
on the machine; report them with its load.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from inference_server.core.types import InferRequest
from inference_server.prediction_log.capture import Capture
from inference_server.prediction_log.records import BlockKeys, pass_blocks, spool_data
from modelyard.model_repository import ModelConfig
from modelyard.models import ModelSignature, TensorSpec
from modelyard.settings import PredictionLogSettings


class _Version:
    """The attributes of a LoadedVersion the log reads."""

    name = "clf"
    version = 1
    config = ModelConfig()
    signature = ModelSignature(
        inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 4)),),
        outputs=(
            TensorSpec(name="label", datatype="INT64", shape=(-1,)),
            TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
        ),
        feature_names=("f0", "f1", "f2", "f3"),
    )


def measure(requests: int) -> tuple[float, float]:
    """(hook µs per request, encoding µs per row) over ``requests`` calls."""
    capture = Capture(PredictionLogSettings(enabled=True, buffer_capacity=10**8))
    handle: Any = _Version()
    arrays = ([np.ones((1, 4), np.float32)], 1, [np.zeros(1, np.int64), np.ones((1, 2), "f4")])
    request = InferRequest(model_name="clf", inputs=[])
    start = time.perf_counter()
    for _ in range(requests):
        capture.check_room()
        request.id = ""
        request.id = capture.admit(request)
        if capture.sampled(handle):
            capture.record(request, handle, "none", 0.001, arrays)
    hook = (time.perf_counter() - start) / requests * 1e6
    start = time.perf_counter()
    rows = 0
    keys = BlockKeys()
    buffer = capture.buffer
    while buffer:
        chunk = [buffer.popleft() for _ in range(min(1024, len(buffer)))]
        blocks = pass_blocks(chunk, 0, keys)
        spool_data(blocks)
        rows += sum(b.records for b in blocks)
    return hook, (time.perf_counter() - start) / rows * 1e6


def main() -> None:
    """Print the figures of each round with the machine's load."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for round_ in range(args.rounds):
        hook, encode = measure(args.requests)
        print(f"round {round_}: hook {hook:.2f} µs/request, spool encoding {encode:.2f} µs/row")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
