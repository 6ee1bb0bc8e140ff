"""Cost of the prediction log's request-path hook, and of the spooler's encoding per row.

``python -m benchmarks.prediction_log_hook [--requests N] [--run-size K] [--rounds R]``
times what the server adds to one answered request with the log on (per request
``Capture.admit``; per session run of ``K`` requests one
``record``, as the batcher's tap calls it), and separately what the spooler thread spends per
row (``pass_blocks`` and the spool encoding, in passes of 1,024 requests), on one-row,
four-feature classifier requests. ``K`` is 64 by default (a full batch, what a saturated
server runs) and 1 for an idle one. Not a test: numbers depend on the machine; report them
with its load.
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
    logs_every_request = True
    signature = ModelSignature(
        inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 4)),),
        outputs=(
            TensorSpec(name="label", datatype="INT64", shape=(-1,)),
            TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
        ),
        feature_names=("f0", "f1", "f2", "f3"),
    )


class _Job:
    """What the log reads of a request's job."""

    __slots__ = ("request", "start", "variant")

    def __init__(self, request: InferRequest) -> None:
        self.request = request
        self.variant = "none"
        self.start = time.perf_counter()


def measure(requests: int, run_size: int) -> tuple[float, float]:
    """(hook µs per request, encoding µs per row) over ``requests`` requests."""
    capture = Capture(PredictionLogSettings(enabled=True, buffer_capacity=10**8))
    handle: Any = _Version()
    inputs = [np.ones((run_size, 4), np.float32)]
    outputs = [np.zeros(run_size, np.int64), np.ones((run_size, 2), "f4")]
    rows = [1] * run_size
    runs = [
        [_Job(InferRequest(model_name="clf", inputs=[])) for _ in range(run_size)]
        for _ in range(requests // run_size)
    ]  # NOTE: made before the clock starts: the server has its requests and jobs anyway
    start = time.perf_counter()
    for run in runs:
        jobs = []
        for job in run:
            if capture.admit(job.request, handle):
                jobs.append(job)
        capture.record(handle, jobs, rows, inputs, outputs)
    hook = (time.perf_counter() - start) / requests * 1e6
    start = time.perf_counter()
    done = 0
    keys = BlockKeys()
    while capture.buffer:
        blocks = pass_blocks(capture.take(1024), 0, keys)
        spool_data(blocks)
        done += sum(b.records for b in blocks)
    return hook, (time.perf_counter() - start) / done * 1e6


def main() -> None:
    """Print the figures of each round with the machine's load."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--run-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    for round_ in range(args.rounds):
        hook, encode = measure(args.requests, args.run_size)
        print(f"round {round_}: hook {hook:.2f} µs/request, spool encoding {encode:.2f} µs/row")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
