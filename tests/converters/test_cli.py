"""``modelyard convert`` end to end, in a subprocess like a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes

from tests.converters.kinds import CLASSIFIERS, with_bucket

pytestmark = pytest.mark.slow


def _run(*args: str | Path, hash_seed: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", "convert", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
    )


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    return features, target


def test_lightgbm_text_file_converts_and_is_byte_identical_across_runs(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = cancer
    model = lgb.LGBMClassifier(n_estimators=20, n_jobs=1, verbose=-1).fit(features, target)
    model.booster_.save_model(tmp_path / "model.txt")
    features.to_csv(tmp_path / "sample.csv", index=False)

    # onnxmltools orders opset imports by a set's iteration: seeds 1 and 20 give both orders.
    first = _run("--model", tmp_path / "model.txt", "--sample", tmp_path / "sample.csv",
                 "--output", tmp_path / "a", hash_seed="1")  # fmt: skip
    second = _run("--model", tmp_path / "model.txt", "--sample", tmp_path / "sample.csv",
                  "--output", tmp_path / "b", hash_seed="20")  # fmt: skip

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "within tolerance" in first.stdout
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (
        tmp_path / "b" / "model.onnx"
    ).read_bytes()
    onnx.checker.check_model(onnx.load(tmp_path / "a" / "model.onnx"), full_check=True)
    report = json.loads((tmp_path / "a" / "conversion.json").read_text())
    assert report["fidelity"]["label_agreement"] == 1.0
    assert report["signature"]["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 30]}
    ]
    assert report["metadata"]["modelyard.source_kind"] == "Booster"
    assert json.loads(report["metadata"]["modelyard.feature_names"]) == list(features.columns)


def test_joblib_pipeline_with_parquet_sample(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = cancer
    features = with_bucket(features.iloc[:, :6])
    model = CLASSIFIERS["Pipeline(ColumnTransformer, LogisticRegression)"](features, target, 5)
    joblib.dump(model, tmp_path / "pipe.joblib")
    features.to_parquet(tmp_path / "sample.parquet")

    done = _run("--model", tmp_path / "pipe.joblib", "--sample", tmp_path / "sample.parquet",
                "--output", tmp_path / "out")  # fmt: skip

    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "conversion.json").read_text())
    assert {i["name"] for i in report["signature"]["inputs"]} == set(features.columns)


@pytest.mark.parametrize("suffix", ["json", "ubj"])
def test_xgboost_model_files(tmp_path: Path, suffix: str) -> None:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    model = xgb.XGBRegressor(n_estimators=10, n_jobs=1).fit(features, target)
    model.save_model(tmp_path / f"model.{suffix}")
    features.to_csv(tmp_path / "sample.csv", index=False)

    done = _run("--model", tmp_path / f"model.{suffix}", "--sample", tmp_path / "sample.csv",
                "--output", tmp_path / "out")  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "XGBRegressor" in done.stdout


def test_bad_inputs_exit_2_with_one_line(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = cancer
    joblib.dump(CLASSIFIERS["RandomForestClassifier"](features, target, 3), tmp_path / "rf.pkl")
    features.drop(columns=["mean area"]).to_csv(tmp_path / "short.csv", index=False)
    (tmp_path / "broken.pkl").write_bytes(b"\x80\x05garbage")
    features.to_csv(tmp_path / "sample.csv", index=False)

    missing = _run("--model", tmp_path / "rf.pkl", "--sample", tmp_path / "short.csv",
                   "--output", tmp_path / "o1")  # fmt: skip
    corrupt = _run("--model", tmp_path / "broken.pkl", "--sample", tmp_path / "sample.csv",
                   "--output", tmp_path / "o2")  # fmt: skip
    strict = _run("--model", tmp_path / "rf.pkl", "--sample", tmp_path / "sample.csv",
                  "--output", tmp_path / "o3", "--probability-atol", "0")  # fmt: skip

    for done in (missing, corrupt, strict):
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert "missing columns ['mean area']" in missing.stderr
    assert "broken.pkl" in corrupt.stderr
    assert "not a valid joblib/pickle file" in corrupt.stderr
    assert "conversion refused" in strict.stderr
    assert "max |Δ probabilities|" in strict.stderr
    assert not (tmp_path / "o3").exists()


def test_allow_mismatch_writes_and_records(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    features, target = cancer
    joblib.dump(CLASSIFIERS["XGBClassifier"](features, target, 5), tmp_path / "xgb.joblib")
    features.iloc[:50].to_csv(tmp_path / "sample.csv", index=False)

    done = _run("--model", tmp_path / "xgb.joblib", "--sample", tmp_path / "sample.csv",
                "--output", tmp_path / "out", "--probability-atol", "0",
                "--allow-mismatch")  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "OUTSIDE tolerance" in done.stdout
    props = {p.key: p.value for p in onnx.load(tmp_path / "out" / "model.onnx").metadata_props}
    assert props["modelyard.fidelity.override"] == "true"
    assert np.isfinite(json.loads(props["modelyard.fidelity"])["max_abs_diff"])
