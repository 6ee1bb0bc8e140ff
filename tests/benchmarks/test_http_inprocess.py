"""benchmarks.http_inprocess: a tiny in-process run gives one plausible CPU figure a round.

Only the shape and sanity of the result are checked; the figures belong to the benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import http_inprocess
from benchmarks.messages import http_infer_body
from benchmarks.reference import MODEL_NAME, ReferenceFiles


@pytest.mark.slow
@pytest.mark.parametrize("observed", [[], ["--log", "--sketches"]])
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
