"""benchmarks.http_inprocess: a tiny in-process run gives one plausible CPU figure a round.

Only the shape and sanity of the result are checked; the figures belong to the benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from benchmarks import http_inprocess
from benchmarks.messages import http_infer_body
from benchmarks.reference import MODEL_NAME, ReferenceFiles
from inference_server.core.types import InferRequest
from inference_server.loaded_version import AnswerTap


@pytest.mark.slow
@pytest.mark.parametrize(
    "observed", [[], ["--log", "--sketches"], ["--log", "--sketches", "--cut", "record"]]
)
def test_http_inprocess_gives_cpu_per_request_of_each_round(
    reference_files: ReferenceFiles, tmp_path: Path, observed: list[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(http_infer_body(np.load(reference_files.rows)[:1]))
    args = http_inprocess.parse_args(
        [
            *("--repository", str(reference_files.repository), "--model", MODEL_NAME),
            *("--body", str(body), "--concurrency", "2"),
            *("--waves", "60", "--warmup", "5", "--rounds", "2"),
            *observed,
        ]
    )

    per_request = http_inprocess.measure(args)

    assert len(per_request) == 2
    # each request costs some CPU, and far less than a second of it; the loop thread's is a
    # part of it (both clocks are read separately: 1 % of slack)
    assert all(math.isfinite(p) and 0 < p < 1.0 for p, _ in per_request), per_request
    assert all(0 < loop <= p * 1.01 for p, loop in per_request), per_request  # clocks differ


def _observed(*cut: str) -> tuple[AnswerTap, SimpleNamespace]:
    """The tap of an in-process run with the log and the sketches, less ``cut``, and what it
    feeds (the capture and the sketch book)."""
    args = http_inprocess.parse_args(
        ["--repository", ".", "--body", "b", "--log", "--sketches", *[f"--cut={c}" for c in cut]]
    )
    capture, book = http_inprocess._observers(args)
    tap = http_inprocess._tap(args, capture, book)
    assert tap is not None
    return tap, SimpleNamespace(capture=capture, book=book)


def _run_through(tap: AnswerTap) -> None:
    """One answered one-row run through ``tap`` (a job the log samples)."""
    request = InferRequest(model_name="m", inputs=[], id="r1", protocol="http")
    job = SimpleNamespace(request=request, variant="none", start=0.0, logged=True, arrays=[])
    handle = SimpleNamespace(name="m", version=1)
    tags: list[object] = [job]
    tap(handle, tags, [1], [np.zeros((1, 2), np.float32)], [np.zeros(1)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cut", "buffered", "queued"),
    [((), 1, 1), (("record",), 0, 1), (("observe",), 1, 0), (("tap",), 0, 0)],
)
def test_a_cut_takes_out_its_piece_and_only_it(
    cut: tuple[str, ...], buffered: int, queued: int
) -> None:
    tap, fed = _observed(*cut)
    _run_through(tap)
    assert (fed.capture.buffered, fed.book.queued) == (buffered, queued)


def test_a_cut_admit_logs_every_request_without_an_id_or_checks() -> None:
    _, fed = _observed("admit")
    request = InferRequest(model_name="m", inputs=[], parameters={"routing_key": "x" * 1000})
    assert fed.capture.admit(request, SimpleNamespace()) is True
    assert request.id == ""  # the real admit would have refused the key, or set an id
