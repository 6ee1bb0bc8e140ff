"""benchmarks.cpu_per_request: one short round against the gRPC echo and this checkout.

Real servers (pinned as the script pins them) and the real gRPC load generator; only the
shape and sanity of the result are checked, never the figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import cpu_per_request


@pytest.mark.slow
def test_cpu_per_request_measures_every_server_in_the_round(bench_work: Path) -> None:
    args = cpu_per_request.parse_args(
        [
            *("--protocol", "grpc", "--rounds", "1", "--concurrency", "2"),
            *("--duration", "1", "--warmup", "0.2", "--work-dir", str(bench_work)),
        ]
    )

    result = cpu_per_request.measure(args)

    assert result["concurrency"] == [2]
    assert result["servers"] == ["echo", "this"]
    for name in result["servers"]:
        [point] = result["points"]["2"][name]
        assert point["requests"] > 0, (name, point)
        assert point["server_cpu_s"] > 0, (name, point)
        assert math.isfinite(point["per_cpu_s"]), (name, point)
        assert point["per_cpu_s"] > 0, (name, point)
    lines = cpu_per_request.summary_lines(result)
    assert [line.split(":")[0] for line in lines] == ["c=2 echo", "c=2 this"]
