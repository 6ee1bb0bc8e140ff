"""The cost of batch invariance, in process: padded vs plain single-row runs, interleaved.

For each model (a linear classifier, which the load-time rule pads, and a LightGBM ensemble,
which it leaves as is) the single-row call is timed plain and through the server's plan
(``OnnxModel.run_sync``) in alternating blocks, ``--rounds`` times; the report gives the
median per-call time of each and the median and spread of the ratio over the rounds, plus
the load-time check's duration. The machine facts come along (``benchmarks.system``).

Run: ``python -m benchmarks.invariance_cost --rounds 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.system import describe_machine

BLOCK = 200
"""Calls per timed block."""

PAIRS = 25
"""Alternating plain/planned block pairs per round (the round's figure is their median)."""


def _models(workdir: Path) -> dict[str, Path]:
    import lightgbm as lgb
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from converters import convert

    x, y = make_classification(n_samples=2000, n_features=32, n_informative=16, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(32)])
    fitted = {
        "LogisticRegression": LogisticRegression(max_iter=2000).fit(frame, y),
        "LGBMClassifier(300 trees)": lgb.LGBMClassifier(n_estimators=300, n_jobs=1, verbose=-1).fit(
            frame, y
        ),
    }
    paths: dict[str, Path] = {}
    for name, model in fitted.items():
        path = workdir / f"{len(paths)}.onnx"
        path.write_bytes(convert(model, frame.iloc[:200]).onnx)
        paths[name] = path
    return paths


def _per_call_us(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(BLOCK):
        call()
    return (time.perf_counter() - start) / BLOCK * 1e6


def _pair(
    plain: Callable[[list[np.ndarray]], object],
    planned: Callable[[list[np.ndarray]], object],
    row: list[np.ndarray],
    *,
    flip: bool,
) -> tuple[float, float]:
    """One plain and one planned block, in alternating order (no position bias)."""
    if flip:
        b = _per_call_us(lambda: planned(row))
        return _per_call_us(lambda: plain(row)), b
    a = _per_call_us(lambda: plain(row))
    return a, _per_call_us(lambda: planned(row))


def measure(path: Path, rounds: int) -> dict[str, Any]:
    """Time plain vs planned single-row runs of one model, interleaved.

    Raises:
        InvalidArgument: the file is not a loadable model.
    """
    from inference_server.runtime import OnnxModel, _session

    start = time.perf_counter()
    model = OnnxModel.load(path)
    load_s = time.perf_counter() - start
    plain = OnnxModel(_session(path, 1), model.description)
    row = [np.random.default_rng(0).normal(size=(1, 32)).astype(np.float32)]
    plain_us, planned_us, ratios = [], [], []
    for _ in range(rounds):
        pairs = [_pair(plain.run_sync, model.run_sync, row, flip=i % 2 == 1) for i in range(PAIRS)]
        a = statistics.median(p for p, _ in pairs)
        b = statistics.median(q for _, q in pairs)
        plain_us.append(a)
        planned_us.append(b)
        ratios.append(b / a)
    return {
        "plan": model.plan.label,
        "load_with_check_ms": round(load_s * 1000, 1),
        "plain_us": round(statistics.median(plain_us), 2),
        "planned_us": round(statistics.median(planned_us), 2),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_spread": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def main() -> None:
    """Measure and print the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: measure(p, args.rounds) for name, p in _models(Path(tmp)).items()}
    after = [round(x, 2) for x in os.getloadavg()]
    report = {"machine": describe_machine(), "load_before": before, "load_after": after}
    print(json.dumps(report | {"results": results}, indent=2))


if __name__ == "__main__":
    main()
