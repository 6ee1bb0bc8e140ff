"""The reference model every contender serves, and the files each contender loads.

The model is the one the issues name: a LightGBM binary classifier (300 trees, 31 leaves) on
``make_classification(n_samples=50_000, n_features=32, n_informative=16, random_state=0)``.
Training takes a few seconds, so the files are built once into the work directory and reused
while the training recipe (``RECIPE``) is unchanged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "reference"
N_FEATURES = 32
RECIPE = {
    "n_samples": 50_000,
    "n_features": N_FEATURES,
    "n_informative": 16,
    "random_state": 0,
    "n_estimators": 300,
    "num_leaves": 31,
}


@dataclass(frozen=True)
class ReferenceFiles:
    """Paths of the built reference model files.

    Attributes:
        onnx: the ONNX conversion (input ``input`` float32 [N, 32]; outputs ``label``,
            ``probabilities``).
        lightgbm: the native LightGBM text model (naive server, MLServer).
        rows: float32 [1024, 32] sample rows from the training data (.npy, ``build_rows``).
        repository: a model repository ``<repo>/reference/1/model.onnx`` for modelyard.
    """

    onnx: Path
    lightgbm: Path
    rows: Path
    repository: Path


def _dataset() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=RECIPE["n_samples"],
        n_features=RECIPE["n_features"],
        n_informative=RECIPE["n_informative"],
        random_state=RECIPE["random_state"],
    )
    return x, y


def build_rows(work_dir: Path) -> Path:
    """Write (once) 1024 float32 rows of the training data; cheap, needs no training.

    Load generators send these rows, so contenders that need no model (the echo servers)
    never wait for training.
    """
    path = work_dir / "rows.npy"
    if not path.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        tmp = work_dir / "rows.tmp.npy"
        np.save(tmp, _dataset()[0][:1024].astype(np.float32))
        tmp.replace(path)
    return path


def _train() -> tuple[Any, bytes]:
    """Train the reference model; return the classifier and its ONNX conversion."""
    import lightgbm as lgb
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    x, y = _dataset()
    clf = lgb.LGBMClassifier(
        n_estimators=RECIPE["n_estimators"],
        num_leaves=RECIPE["num_leaves"],
        random_state=0,
        verbose=-1,
    )
    clf.fit(x, y)
    onnx_model = onnxmltools.convert_lightgbm(
        clf, initial_types=[("input", FloatTensorType([None, N_FEATURES]))], zipmap=False
    )
    return clf, onnx_model.SerializeToString()


def build_reference(work_dir: Path) -> ReferenceFiles:
    """Build (or reuse) the reference model files under ``work_dir/model``.

    Args:
        work_dir: the harness work directory (``benchmarks/.work``).

    Returns:
        The paths of the model files.
    """
    root = work_dir / "model"
    files = ReferenceFiles(
        onnx=root / "reference.onnx",
        lightgbm=root / "reference.txt",
        rows=build_rows(work_dir),
        repository=root / "repository",
    )
    stamp = root / "recipe.json"
    recipe = json.dumps(RECIPE, sort_keys=True)
    if stamp.exists() and stamp.read_text() == recipe and files.onnx.exists():
        return files
    root.mkdir(parents=True, exist_ok=True)
    clf, onnx_bytes = _train()
    files.onnx.write_bytes(onnx_bytes)
    clf.booster_.save_model(str(files.lightgbm))
    version_dir = files.repository / MODEL_NAME / "1"
    shutil.rmtree(files.repository, ignore_errors=True)
    version_dir.mkdir(parents=True)
    shutil.copyfile(files.onnx, version_dir / "model.onnx")
    stamp.write_text(recipe)
    return files
