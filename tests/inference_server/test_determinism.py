"""The load-time batch-invariance rule picks the plan the model needs (real onnxruntime)."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from converters import convert
from inference_server.determinism import is_invariant, sample_inputs
from inference_server.runtime import OnnxModel, _session

pytestmark = pytest.mark.slow  # trains and converts models


def _data() -> pd.DataFrame:
    x, _ = make_classification(n_samples=400, n_features=8, random_state=0)
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])


def _target(frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(frame["x0"] + frame["x1"] > 0, dtype=np.int64)


def _write(tmp_path: Path, model: object, frame: pd.DataFrame) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(convert(model, frame).onnx)
    return path


def test_a_linear_model_pads_lone_rows(tmp_path: Path) -> None:
    frame = _data()
    path = _write(tmp_path, LogisticRegression().fit(frame, _target(frame)), frame)
    plain = OnnxModel(_session(path, 1), OnnxModel.load(path).description)
    arrays = sample_inputs(plain.description.signature)

    assert not is_invariant(plain.run_sync, arrays, pad_single=False)  # the GEMV path differs
    model = OnnxModel.load(path)
    assert model.plan.pad_single
    assert model.plan.threads == 1
    assert model.plan.verdict == "invariant"
    alone = model.run_sync([arrays[0][:1]])
    batch = model.run_sync([arrays[0][:5]])
    assert alone[1].tobytes() == batch[1][:1].tobytes()


def test_a_multithreaded_tree_ensemble_falls_back_to_one_thread(tmp_path: Path) -> None:
    frame = _data()
    booster = lgb.LGBMClassifier(n_estimators=150, n_jobs=1, verbose=-1)
    path = _write(tmp_path, booster.fit(frame, _target(frame)), frame)
    description = OnnxModel.load(path).description
    two = OnnxModel(_session(path, 2), description)
    arrays = sample_inputs(description.signature)

    assert not is_invariant(two.run_sync, arrays, pad_single=True)  # trees split over threads
    model = OnnxModel.load(path, intra_op_num_threads=2)
    assert model.plan.threads == 1
    assert not model.plan.pad_single
    assert OnnxModel.load(path).plan.label == "as-is, 1 thread(s), invariant"
