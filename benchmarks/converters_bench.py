"""Converters benchmark: native predict vs onnxruntime for every supported kind.

    python -m benchmarks.converters_bench [--budget SECONDS] [--results benchmarks/RESULTS.md]

For each kind (trained on generated data, plus the reference LightGBM model) it times, in one
process and one thread (``intra_op_num_threads=1``, LightGBM/XGBoost ``n_jobs=1``):

- single row: one call per row, µs per call (median and p99);
- batches of 64 and 4096 rows: rows/s from the median batch time.

Native means what serving the trained model directly would call: ``predict_proba`` for
classifiers, ``predict`` for regressors (a DataFrame for ColumnTransformer pipelines, a numpy
float64 array otherwise: matrix kinds are fitted on numpy); onnxruntime runs the converted
model on FP32 inputs. Each measurement runs
until ``--budget`` seconds or its call cap, whichever comes first, after a warm-up; the ratio
column is onnxruntime's speed over native measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd
import xgboost as xgb
from sklearn.datasets import make_classification, make_regression
from threadpoolctl import threadpool_limits

from converters import convert
from converters.reference import REFERENCE, build_reference
from tests.converters.kinds import CLASSIFIERS, REGRESSORS, needs_bucket, with_bucket

HEADING = "## Converters: native vs onnxruntime"
BATCHES = (64, 4096)
SIZE = 100
"""Trees (or boosting iterations) of the generated tree models."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One model to time: its native call and its onnxruntime call on the same rows."""

    kind: str
    native: Callable[[int, int], Any]
    onnx: Callable[[int, int], Any]
    rows: int


@dataclasses.dataclass(frozen=True)
class Row:
    """The figures of one case."""

    kind: str
    single: tuple[float, float, float, float]  # native p50, p99, onnx p50, p99 (µs)
    batches: dict[int, tuple[float, float]]  # size -> native rows/s, onnx rows/s


def _session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _case(kind: str, model: Any, frame: pd.DataFrame, classification: bool) -> Case:
    result = convert(model, frame)
    session = _session(result.onnx)
    per_column = result.metadata["modelyard.input_layout"] == "per_column"
    named = hasattr(model, "feature_names_in_") or per_column
    native_input: Any = frame if named else frame.to_numpy(np.float64)
    matrix = frame.to_numpy(np.float32) if not per_column else None
    columns = {
        name: frame[[name]].to_numpy(
            np.float32 if kind_ == "f" else object if kind_ == "O" else np.int64
        )
        for name, kind_ in ((c, frame[c].dtype.kind) for c in frame.columns)
    }
    predict = (
        model.predict_proba if classification and hasattr(model, "predict_proba") else model.predict
    )
    if isinstance(model, lgb.Booster):
        # Booster.reset_parameter segfaults on a booster taken from a collected estimator.
        predict = functools.partial(model.predict, num_threads=1)

    def native(start: int, stop: int) -> Any:
        return predict(native_input[start:stop])

    def onnx(start: int, stop: int) -> Any:
        if matrix is not None:
            return session.run(None, {"input": matrix[start:stop]})
        return session.run(None, {n: a[start:stop] for n, a in columns.items()})

    return Case(kind=kind, native=native, onnx=onnx, rows=len(frame))


def _cases(only: set[str] | None) -> list[Case]:
    features, labels = make_classification(
        n_samples=8_192, n_features=32, n_informative=16, random_state=1
    )
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(32)])
    targets, values = make_regression(n_samples=8_192, n_features=32, noise=5.0, random_state=1)
    regression_frame = pd.DataFrame(targets, columns=[f"x{i}" for i in range(32)])
    cases: list[Case] = []
    if only is None or "reference" in only:
        built = build_reference(REFERENCE)
        cases.append(_case("reference LGBMClassifier (300 trees)", built.model,
                           pd.DataFrame(built.features[:8_192]), True))  # fmt: skip
    for table, data, target, classification in (
        (CLASSIFIERS, frame, labels, True),
        (REGRESSORS, regression_frame, values, False),
    ):
        for kind, fit in table.items():
            if only is not None and kind not in only:
                continue
            # Matrix kinds are fitted on numpy (no feature names), as a served model would be
            # called: the native call then pays no DataFrame handling.
            sample = with_bucket(data) if needs_bucket(kind) else data
            model = fit(sample if needs_bucket(kind) else sample.to_numpy(), target, SIZE)
            cases.append(_case(kind, model, sample, classification))
            print(f"  built {kind}", file=sys.stderr, flush=True)
    return cases


def _time_calls(call: Callable[[int, int], Any], rows: int, size: int, budget: float,
                cap: int) -> list[float]:  # fmt: skip
    """Seconds per call, cycling through the rows, until ``budget`` s or ``cap`` calls."""
    for start in range(0, min(rows, 3 * size), size):  # warm-up
        call(start, start + size)
    times: list[float] = []
    deadline = time.perf_counter() + budget
    start = 0
    while len(times) < cap and (len(times) < 5 or time.perf_counter() < deadline):
        if start + size > rows:
            start = 0
        began = time.perf_counter_ns()
        call(start, start + size)
        times.append((time.perf_counter_ns() - began) / 1e9)
        start += size
    return times


def _measure(case: Case, budget: float) -> Row:
    single = []
    for call in (case.native, case.onnx):
        times = sorted(_time_calls(call, case.rows, 1, budget, 20_000))
        single += [statistics.median(times) * 1e6, times[int(0.99 * (len(times) - 1))] * 1e6]
    batches = {}
    for size in BATCHES:
        native, onnx = (
            size / statistics.median(_time_calls(call, case.rows, size, budget, 2_000))
            for call in (case.native, case.onnx)
        )
        batches[size] = (native, onnx)
    return Row(kind=case.kind, single=(single[0], single[1], single[2], single[3]), batches=batches)


def _table(rows: list[Row], command: str, budget: float, loads: tuple[float, float]) -> str:
    lines = [
        HEADING,
        "",
        f"Command: `{command}` (budget {budget:g} s per measurement).",
        f"Machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, onnxruntime {ort.__version__}, lightgbm {lgb.__version__}, "
        f"xgboost {xgb.__version__}; one thread everywhere (`intra_op_num_threads=1`, "
        "`n_jobs=1`, `threadpoolctl.threadpool_limits(1)` for OpenMP/BLAS). The 2-core machine "
        "was shared with other engineers' work while measuring (1-min load average "
        f"{loads[0]:.1f} at the start, {loads[1]:.1f} at the end): p99 figures especially are "
        "noisy; compare within a row (same run), not across runs.",
        "Generated data: `make_classification`/`make_regression`, 8,192 x 32 (random_state=1); "
        f"tree models {SIZE} trees/iterations; the reference is the 300-tree LightGBM model.",
        "Native single-row cost is mostly the Python API: scikit-learn-style wrappers validate "
        "input on every call (compare `LGBMClassifier` with `lightgbm.Booster`, the same trees), "
        "forests dispatch through joblib, pipelines through pandas and ColumnTransformer. At 4096 "
        "rows the compute dominates and the native predictors of GradientBoosting and XGBoost can "
        "beat onnxruntime's TreeEnsemble.",
        "",
        "| kind | single row µs native p50 / p99 | single row µs ORT p50 / p99 "
        "| ORT speed-up (p50) | 64 rows: native / ORT rows/s "
        "| 4096 rows: native / ORT rows/s | ORT speed-up 64 / 4096 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        n50, n99, o50, o99 = row.single
        b64, b4k = row.batches[64], row.batches[4096]
        lines.append(
            f"| {row.kind} | {n50:,.1f} / {n99:,.1f} | {o50:,.1f} / {o99:,.1f} | {n50 / o50:.1f}x "
            f"| {b64[0]:,.0f} / {b64[1]:,.0f} | {b4k[0]:,.0f} / {b4k[1]:,.0f} "
            f"| {b64[1] / b64[0]:.1f}x / {b4k[1] / b4k[0]:.1f}x |"
        )
    return "\n".join(lines) + "\n"


def _write_section(path: Path, section: str) -> None:
    """Replace (or append) this benchmark's section in RESULTS.md, keeping the others."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if HEADING in text:
        before, _, after = text.partition(HEADING)
        following = after.find("\n## ")
        rest = after[following + 1 :] if following >= 0 else ""
        text = before + section + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print (and optionally record) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per measurement")
    parser.add_argument(
        "--only", action="append", help="a kind to run (repeatable; 'reference' for the reference)"
    )
    parser.add_argument("--results", type=Path, help="RESULTS.md to update")
    args = parser.parse_args(argv)
    only = set(args.only) if args.only else None
    rows = []
    load_start = os.getloadavg()[0]
    # One thread for OpenMP (HistGradientBoosting, LightGBM, XGBoost) and BLAS too, not only
    # for the libraries that take n_jobs.
    with threadpool_limits(limits=1):
        for case in _cases(only):
            rows.append(_measure(case, args.budget))
            print(f"  measured {case.kind}", file=sys.stderr, flush=True)
    command = "python -m benchmarks.converters_bench " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    section = _table(rows, command.strip(), args.budget, (load_start, os.getloadavg()[0]))
    print(section)
    if args.results:
        _write_section(args.results, section)


if __name__ == "__main__":
    main()
