"""Cost of double-precision graphs: rows/s of the FP64 vs the FP32 graph of the same model.

    python -m benchmarks.precision_bench [--rounds 7] [--seconds 0.4]

For each model, ``converters.convert`` writes both graphs (``precision="float32"`` and
``"float64"``, with ``allow_mismatch`` since the point is speed, not fidelity); onnxruntime
runs each in-process, one thread. Rounds interleave the two graphs (the order alternates per
round), each measurement a fixed wall-clock slice, so a load change on a shared machine hits
both alike. Printed per model and batch size (1 and 512 rows): median rows/s of each graph
over the rounds, the median per-round ratio FP64/FP32 and its range, and the load average
before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from converters import convert

BATCHES = (1, 512)


def _models(frame: pd.DataFrame, target: np.ndarray) -> dict[str, Any]:
    return {
        "LGBMClassifier (100 trees, 31 leaves)": lgb.LGBMClassifier(
            n_estimators=100, n_jobs=1, verbose=-1
        ).fit(frame, target),
        "HistGradientBoostingClassifier (100 iterations)": HistGradientBoostingClassifier(
            max_iter=100, random_state=0
        ).fit(frame, target),
        "Pipeline(StandardScaler, LogisticRegression)": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2_000)
        ).fit(frame, target),
    }


def _session(onnx: bytes) -> Callable[[np.ndarray], object]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _rows_per_s(run: Callable[[np.ndarray], object], x: np.ndarray, seconds: float) -> float:
    run(x)
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        run(x)
        calls += 1
    return calls * len(x) / (time.perf_counter() - start)


def main() -> None:
    """Measure and print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()
    features, target = make_classification(20_000, 16, n_informative=8, random_state=0)
    frame = pd.DataFrame(features * 1e6, columns=[f"f{i}" for i in range(16)])
    sample = frame.iloc[:2048]
    print(f"load before: {os.getloadavg()}")
    print("| model | rows/call | FP32 rows/s | FP64 rows/s | FP64/FP32 median (range) |")
    print("|---|---|---|---|---|")
    for name, model in _models(frame, target).items():
        runs = {
            p: _session(convert(model, sample, precision=p, allow_mismatch=True).onnx)
            for p in ("float32", "float64")
        }
        for batch in BATCHES:
            x = frame.iloc[:batch].to_numpy()
            inputs = {"float32": x.astype(np.float32), "float64": x.astype(np.float64)}
            speeds: dict[str, list[float]] = {"float32": [], "float64": []}
            for r in range(args.rounds):
                for p in ("float32", "float64") if r % 2 == 0 else ("float64", "float32"):
                    speeds[p].append(_rows_per_s(runs[p], inputs[p], args.seconds))
            ratios = [b / a for a, b in zip(speeds["float32"], speeds["float64"], strict=True)]
            print(
                f"| {name} | {batch} | {statistics.median(speeds['float32']):,.0f} "
                f"| {statistics.median(speeds['float64']):,.0f} "
                f"| {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |"
            )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
