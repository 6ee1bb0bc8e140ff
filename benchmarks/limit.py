"""The limit: the reference model called in-process, no network, one thread.

``onnxruntime`` (intra-op threads 1) and native LightGBM (``num_threads=1``) are timed per call
at a given batch size for a bounded time after a warm-up; the summary has the same shape as a
served point (throughput = calls/s, rows/s, per-call latency percentiles).

Run: ``python -m benchmarks.limit --runtime onnxruntime --batch 512 --onnx F --lightgbm F
--rows-file F --duration 3``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.stats import Summary, summarize


def onnxruntime_predictor(onnx_file: Path) -> Callable[[np.ndarray], object]:
    """A one-thread onnxruntime session's run, as a function of the input rows."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Warnings printed per call (e.g. a graph declaring a fixed output shape) would be timed.
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(rows: np.ndarray) -> object:
        return session.run(None, {name: rows})

    return predict


def lightgbm_predictor(model_file: Path) -> Callable[[np.ndarray], object]:
    """Native LightGBM predict with one thread, as a function of the input rows."""
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(model_file))

    def predict(rows: np.ndarray) -> object:
        return booster.predict(rows, num_threads=1)

    return predict


def time_calls(
    predict: Callable[[np.ndarray], object],
    rows: np.ndarray,
    duration: float,
    warmup: float,
    repeats: int = 1,
) -> list[Summary]:
    """Call ``predict(rows)`` during a warm-up, then ``repeats`` timed windows."""
    end_warmup = time.perf_counter() + warmup
    while time.perf_counter() < end_warmup:
        predict(rows)
    return [_window(predict, rows, duration) for _ in range(repeats)]


def _window(predict: Callable[[np.ndarray], object], rows: np.ndarray, duration: float) -> Summary:
    latencies: list[float] = []
    start = now = time.perf_counter()
    while now < start + duration:
        predict(rows)
        after = time.perf_counter()
        latencies.append(after - now)
        now = after
    return summarize(latencies, 0, now - start, len(rows))


def main() -> None:
    """Time one runtime at one batch size and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", choices=["onnxruntime", "lightgbm"], required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--onnx", type=Path, required=True)
    parser.add_argument("--lightgbm", type=Path, required=True)
    parser.add_argument("--rows-file", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=1, help="timed windows")
    args = parser.parse_args()
    all_rows = np.load(args.rows_file)
    rows = np.ascontiguousarray(np.resize(all_rows, (args.batch, all_rows.shape[1])))
    if args.runtime == "onnxruntime":
        predict = onnxruntime_predictor(args.onnx)
    else:
        predict = lightgbm_predictor(args.lightgbm)
    windows = time_calls(predict, rows, args.duration, args.warmup, args.repeats)
    extra: Summary = {"rows": args.batch, "concurrency": 1, "rate": 0.0, "tool": "in-process timer"}
    print(json.dumps([summary | extra for summary in windows]))


if __name__ == "__main__":
    main()
