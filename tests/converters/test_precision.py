"""Fidelity on the user's own float64 data: generated float32-hostile and -safe tables.

The property: for each model kind the converters accept and a generated table (integer
columns up to 2^40, magnitudes from 1e-3 to 1e9 with a few decimals, NaN shares, or plain
small floats), ``convert`` in ``auto`` mode either refuses with a reason or writes a model
that, loaded in onnxruntime *and* served by a running server (``/predict/batch``, JSON
numbers), agrees with the native model on the original float64 rows: every label (native
ties excepted) and |Δp| <= 1e-5 (regression: the report's tolerance). Never a silent
mismatch.

The server is one ``modelyard serve`` subprocess (poll mode) for the module; each example
publishes a new model and waits for it to be ready.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from converters import FidelityError, convert
from converters.fidelity import Scores, measure
from converters.kinds import ConversionFailed
from converters.report import Tolerances
from modelyard.model_repository import ModelConfig, publish_version, write_model_config
from tests.inference_server.conftest import serve_subprocess

SETTINGS = settings(
    deadline=None,
    max_examples=10,  # x 9 kinds: under a minute on a quiet 2-core machine
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
READY_TIMEOUT_S = 30.0

Fit = Callable[[pd.DataFrame, np.ndarray], Any]
CLASSIFIERS: dict[str, Fit] = {
    "Pipeline(SimpleImputer, StandardScaler, RandomForestClassifier)": lambda x, y: make_pipeline(
        SimpleImputer(), StandardScaler(), RandomForestClassifier(n_estimators=8, random_state=0)
    ).fit(x, y),
    "Pipeline(SimpleImputer, StandardScaler, HistGradientBoostingClassifier)": (
        lambda x, y: make_pipeline(
            SimpleImputer(), StandardScaler(), HistGradientBoostingClassifier(max_iter=8)
        ).fit(x, y)
    ),
    "LGBMClassifier": lambda x, y: lgb.LGBMClassifier(
        n_estimators=8, min_child_samples=2, n_jobs=1, verbose=-1
    ).fit(x, y),
    "XGBClassifier": lambda x, y: xgb.XGBClassifier(n_estimators=8, n_jobs=1).fit(x, y),
    "HistGradientBoostingClassifier": lambda x, y: HistGradientBoostingClassifier(
        max_iter=8, random_state=0
    ).fit(x, y),
    "RandomForestClassifier": lambda x, y: RandomForestClassifier(
        n_estimators=8, random_state=0
    ).fit(x, y),
    "Pipeline(SimpleImputer, StandardScaler, LogisticRegression)": lambda x, y: make_pipeline(
        SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=2_000)
    ).fit(x, y),
}
REGRESSORS: dict[str, Fit] = {
    "LGBMRegressor": lambda x, y: lgb.LGBMRegressor(
        n_estimators=8, min_child_samples=2, n_jobs=1, verbose=-1
    ).fit(x, y),
    "Pipeline(SimpleImputer, Ridge)": lambda x, y: make_pipeline(SimpleImputer(), Ridge()).fit(
        x, y
    ),
}
KINDS = [(k, True) for k in CLASSIFIERS] + [(k, False) for k in REGRESSORS]


@st.composite
def column(draw: st.DrawFn, rows: int, rng: np.random.Generator) -> np.ndarray:
    """One float64 column: big integers, magnitudes with decimals, or small floats."""
    kind = draw(st.sampled_from(["integers", "magnitude", "small"]))
    if kind == "integers":  # ids, epoch seconds, cents: neighbours FP32 cannot tell apart
        base = draw(st.integers(2**24, 2**40))
        values = base + rng.integers(0, 64, rows).astype(np.float64)
    elif kind == "magnitude":  # 1e-3 .. 1e9 with a few decimals
        scale = 10.0 ** draw(st.integers(-3, 9))
        decimals = draw(st.integers(0, 4))
        values = np.round(scale * (1 + rng.random(rows)), decimals)
    else:
        values = np.round(rng.normal(size=rows), 1)
    share = draw(st.sampled_from([0.0, 0.0, 0.1]))
    values[rng.random(rows) < share] = np.nan
    return values


@st.composite
def tables(draw: st.DrawFn) -> tuple[pd.DataFrame, np.ndarray]:
    rows = draw(st.integers(60, 160))
    width = draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    frame = pd.DataFrame({f"c{i}": draw(column(rows, rng)) for i in range(width)})
    # The target splits on data values (ranks), the hard case for FP32 thresholds.
    ranks = frame.rank(pct=True).fillna(0.5).to_numpy()
    return frame, ranks @ rng.normal(size=width)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    repo = tmp_path_factory.mktemp("repo")
    with serve_subprocess(
        repo, "--grpc-port", "0", "--http-port", "0", "--metrics-port", "-1",
        "--workers", "1", "--poll-interval", "0.05",
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        yield repo, f"http://127.0.0.1:{ready['http_port']}"
        proc.terminate()
        proc.wait(timeout=30)


_names = itertools.count()


def _serve(served: tuple[Path, str], onnx: bytes) -> tuple[str, httpx.Client, str]:
    repo, url = served
    name = f"m{next(_names)}"
    write_model_config(repo / name, ModelConfig(allow_non_finite=True))
    publish_version(repo, name, 1, {"model.onnx": onnx})
    client = httpx.Client(base_url=url, timeout=30)
    deadline = _now() + READY_TIMEOUT_S
    while client.get(f"/v2/models/{name}/ready").status_code != 200:
        assert _now() < deadline, f"model {name} not ready in {READY_TIMEOUT_S}s"
    return name, client, url


def _now() -> float:
    import time

    return time.monotonic()


def _onnx_scores(onnx: bytes, frame: pd.DataFrame, classification: bool) -> Scores:
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    dtype = np.float64 if spec.type == "tensor(double)" else np.float32
    outputs = session.run(None, {spec.name: frame.to_numpy(dtype=dtype)})
    if classification:
        return Scores(labels=outputs[0], values=outputs[1])
    return Scores(labels=None, values=outputs[0].reshape(-1))


def _server_scores(
    served: tuple[Path, str], onnx: bytes, frame: pd.DataFrame, classification: bool
) -> Scores:
    name, client, _ = _serve(served, onnx)
    rows = [
        {k: None if math.isnan(v) else float(v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]
    try:
        response = client.post("/predict/batch", params={"model": name}, json=rows)
    finally:
        client.close()
    assert response.status_code == 200, response.text
    body = response.json()
    if classification:
        return Scores(labels=np.array(body["labels"]), values=np.array(body["probabilities"]))
    return Scores(labels=None, values=np.array(body["predictions"]))


def _native(model: Any, frame: pd.DataFrame, classification: bool) -> Scores:
    if classification:
        return Scores(labels=model.predict(frame), values=model.predict_proba(frame))
    return Scores(labels=None, values=np.asarray(model.predict(frame), dtype=np.float64))


@pytest.mark.parametrize(("kind", "classification"), KINDS, ids=[k for k, _ in KINDS])
@SETTINGS
@given(table=tables())
def test_auto_precision_agrees_on_float64_data_or_refuses_property(
    served: tuple[Path, str],
    kind: str,
    classification: bool,
    table: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, signal = table
    target = (signal > np.median(signal)).astype(int) if classification else signal * 1e3
    if classification and len(set(target)) < 2:
        return
    model = (CLASSIFIERS if classification else REGRESSORS)[kind](frame, target)
    try:
        result = convert(model, frame)
    except (FidelityError, ConversionFailed) as refused:  # honest refusal, with its reason
        reason = str(refused)
        assert "refused" in reason or "could not convert" in reason
        return
    native = _native(model, frame, classification)
    task = "classification" if classification else "regression"
    for scores in (
        _onnx_scores(result.onnx, frame, classification),
        _server_scores(served, result.onnx, frame, classification),
    ):
        report = measure(task, native, scores, Tolerances())
        assert report.within_tolerance, (result.fidelity.precision, report.summary())
    assert result.fidelity.within_tolerance
    if result.fidelity.unrepresentable_features:
        assert result.fidelity.precision == "float64"


def test_report_splits_a_failure_that_is_only_at_the_input() -> None:
    """Integers one apart beyond 2^24: LightGBM splits between them, FP32 merges them.

    The FP32 graph is exact on FP32 values (graph share ~0) yet wrong on the user's rows
    (input share = total); the report names the feature. ``auto`` then writes FP64 with no
    input share at all.
    """
    rng = np.random.default_rng(7)
    ids = 2.0**30 + rng.integers(0, 40, 400)
    frame = pd.DataFrame({"id": ids, "noise": np.round(rng.normal(size=400), 1)})
    target = (ids % 2 == 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=10, min_child_samples=2, n_jobs=1, verbose=-1)
    model.fit(frame, target)

    forced = convert(model, frame, precision="float32", allow_mismatch=True).fidelity
    auto = convert(model, frame).fidelity

    assert not forced.within_tolerance
    assert forced.precision == "float32"
    assert forced.graph_max_abs_diff <= 1e-6
    assert forced.input_max_abs_diff == pytest.approx(forced.max_abs_diff)
    assert forced.input_max_abs_diff > 0.1
    assert forced.input_label_changes > 0
    assert forced.precision_sensitive_features == ("id",)
    assert forced.unrepresentable_features == ("id",)
    assert auto.within_tolerance
    assert auto.precision == "float64"
    assert auto.input_max_abs_diff == 0.0
    assert "2^24" in auto.precision_reason
    assert "'id'" in auto.precision_reason


def test_explicit_float32_on_hostile_data_is_refused_with_the_input_reason() -> None:
    rng = np.random.default_rng(3)
    ids = 2.0**30 + rng.integers(0, 40, 300)
    frame = pd.DataFrame({"id": ids})
    model = lgb.LGBMClassifier(n_estimators=5, min_child_samples=2, n_jobs=1, verbose=-1)
    model.fit(frame, (ids % 2 == 0).astype(int))

    with pytest.raises(FidelityError, match=r"float32 inputs \(input share"):
        convert(model, frame, precision="float32")
