"""benchmarks.sketch_cpu: one short round of each variant (fresh server each, fixed rate).

Only the shape and sanity of the result are checked, never the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import sketch_cpu


@pytest.mark.slow
def test_sketch_cpu_measures_every_variant(bench_work: Path) -> None:
    args = sketch_cpu.parse_args(
        [
            *("--rate", "200", "--duration", "1", "--settle", "0.5", "--rounds", "1"),
            *("--work-dir", str(bench_work)),
        ]
    )

    result = sketch_cpu.measure(args)

    assert list(result) == list(sketch_cpu.VARIANTS)
    for variant, values in result.items():
        [server_us] = values["server_us"]
        [fold_us] = values["fold_us"]
        # a request costs the server some CPU, and far less than a second of it
        assert 0 < server_us < 1e6, (variant, values)
        assert fold_us >= 0, (variant, values)
    assert result["off"]["fold_us"] == [0.0]  # no sketches, no folds
    # sketches on: the book folds every 0.1 s, so a second of load is folded before the end
    assert result["log"]["fold_us"][0] > 0, result
    assert result["bins"]["fold_us"][0] > 0, result
    assert len(sketch_cpu.summary_lines(result)) == 2 * len(result)
