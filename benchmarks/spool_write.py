"""The spooler thread's CPU per request: spool format v1 (before) against v2 (now).

``python -m benchmarks.spool_write [--passes N] [--pass-requests K] [--features F] [--rounds R]
[--dir D]`` runs what the spooler thread does in a pass -- :func:`~inference_server.
prediction_log.records.pass_blocks` over the buffered runs (64 one-row requests of ``F``
features each, 32 by default as the harness's model), the
spool records, one append -- ``N`` times with ``K`` requests per pass (REST at c=64 answers
about 1,400 requests per 50 ms pass on this project's machines), in two variants:

* **before** (v1): blocks encoded as JSON (tensor bytes in base64), newline-joined, one
  buffered write into a segment file that grows; shipped segments deleted (so each write
  allocates new page-cache pages);
* **now** (v2): blocks as MessagePack, framed with a CRC, one ``writev``
  (:class:`~inference_server.prediction_log.spool.Spool`); shipped segments recycled.

Only the spooler's work is timed, as CPU time of its thread (``time.thread_time``); filling
the buffer and the simulated shipper (read back, fsync, checkpoint, delete or recycle, after
each pass) are not. Rounds interleave the variants; each prints µs per request, and the end
prints the median and the spread (min-max) of each. The spool lives in ``--dir`` (default
``benchmarks/.work``: the disk, not a tmpfs). Not a test: numbers depend on the machine and
its load; report them with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import numpy as np

from benchmarks.prediction_log_hook import _Job
from inference_server.core.types import InferRequest
from inference_server.prediction_log import records
from inference_server.prediction_log.capture import Capture
from inference_server.prediction_log.records import BlockKeys, Shipped, pass_blocks, spool_data
from inference_server.prediction_log.spool import Spool
from modelyard.model_repository import ModelConfig
from modelyard.models import ModelSignature, TensorSpec
from modelyard.prediction_blocks import encode_block
from modelyard.settings import PredictionLogSettings

_RUN = 64
_TAKE = 1024  # the writer's _YIELD_REQUESTS
_SEGMENT_BYTES = 8 * 1024 * 1024


class _SpoolV1:
    """The previous release's spool writing path (JSON lines, segments deleted)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.number = 1
        self.size = 0
        self.file = (folder / f"{self.number:016d}.seg").open("ab")

    def append(self, data: bytes) -> None:
        self.file.write(data)
        self.file.flush()
        self.size += len(data)
        if self.size >= _SEGMENT_BYTES:
            os.fsync(self.file.fileno())  # NOTE: as the old Spool._roll did with fsync on
            self.file.close()
            self.number += 1
            self.size = 0
            self.file = (self.folder / f"{self.number:016d}.seg").open("ab")

    def ship(self) -> None:
        """fsync, then delete the segments before the current one (what shipping did)."""
        os.fsync(self.file.fileno())
        for path in self.folder.glob("*.seg"):
            if int(path.stem) < self.number:
                path.unlink()

    def close(self) -> None:
        self.file.close()


def _v1_lines(shipped: Sequence[Shipped]) -> bytes:
    return b"".join([s.payload + b"\n" for s in shipped])


class _Version:
    """The attributes of a LoadedVersion the log reads: a classifier of ``features`` FP32
    features (the harness's model has 32)."""

    def __init__(self, features: int) -> None:
        self.name = "clf"
        self.version = 1
        self.config = ModelConfig()
        self.logs_every_request = True
        self.signature = ModelSignature(
            inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, features)),),
            outputs=(
                TensorSpec(name="label", datatype="INT64", shape=(-1,)),
                TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
            ),
            feature_names=tuple(f"f{i}" for i in range(features)),
        )


def _fill(capture: Capture, requests: int, features: int) -> None:
    handle: Any = _Version(features)
    inputs = [np.ones((_RUN, features), np.float32)]
    outputs = [np.zeros(_RUN, np.int64), np.ones((_RUN, 2), "f4")]
    for _ in range(requests // _RUN):
        jobs = [_Job(InferRequest(model_name="clf", inputs=[])) for _ in range(_RUN)]
        for job in jobs:
            capture.admit(job.request, handle)
        capture.record(handle, jobs, [1] * _RUN, inputs, outputs)


def _pass(capture: Capture, keys: BlockKeys) -> list[Shipped]:
    blocks: list[Shipped] = []
    while capture.buffer:
        blocks += pass_blocks(capture.take(_TAKE), 0, keys)
    return blocks


def run(
    variant: str, passes: int, pass_requests: int, features: int, folder: Path
) -> tuple[float, float, float]:
    """µs of the spooler thread's CPU per request over ``passes`` passes: the whole pass, and
    of it the spool write (records, frames, write); and the spooled bytes per request."""
    capture = Capture(PredictionLogSettings(enabled=True, buffer_capacity=10**8))
    keys = BlockKeys()
    spent = writing = 0.0
    done = written = 0
    v1 = variant == "before"
    encoder = msgspec.json.Encoder().encode if v1 else encode_block
    old = _SpoolV1(folder) if v1 else None
    spool = None if v1 else Spool(folder, segment_bytes=_SEGMENT_BYTES, fsync=True)
    position = (0, 0) if spool is None else spool.checkpoint()
    try:
        with mock.patch.object(records, "encode_block", encoder):
            for _ in range(passes):
                _fill(capture, pass_requests, features)
                start = time.thread_time()
                blocks = _pass(capture, keys)
                middle = time.thread_time()
                if old is not None:
                    old.append(_v1_lines(blocks))
                elif spool is not None:
                    spool.append(spool_data(blocks))
                end = time.thread_time()
                spent += end - start
                writing += end - middle
                done += sum(b.records for b in blocks)
                written += sum(len(b.payload) for b in blocks)
                if old is not None:
                    old.ship()
                elif spool is not None:
                    spool.sync()
                    while True:  # the shipper: read back, checkpoint, recycle
                        got, position = spool.read(position, 5000)
                        spool.commit(position)
                        if not got:
                            break
    finally:
        if old is not None:
            old.close()
        if spool is not None:
            spool.close()
    return spent / done * 1e6, writing / done * 1e6, written / done


def main() -> None:
    """Print each round's figures, then the median and spread of each variant."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--pass-requests", type=int, default=1408)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="benchmarks/.work")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    results: dict[str, list[tuple[float, float, float]]] = {"before": [], "now": []}
    for round_ in range(args.rounds):
        for variant in ("before", "now") if round_ % 2 == 0 else ("now", "before"):
            with tempfile.TemporaryDirectory(dir=args.dir, prefix="spool-bench-") as folder:
                cost = run(variant, args.passes, args.pass_requests, args.features, Path(folder))
            results[variant].append(cost)
            print(
                f"round {round_} {variant:>6}: spooler {cost[0]:.3f} µs/request "
                f"(of which the spool write {cost[1]:.3f}), {cost[2]:.0f} B/request"
            )
    for variant, costs in results.items():
        for name, values in (("spooler", [c[0] for c in costs]), ("write", [c[1] for c in costs])):
            print(
                f"{variant:>6} {name:>7}: median {statistics.median(values):.3f} µs/request, "
                f"spread {min(values):.3f}-{max(values):.3f}"
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
