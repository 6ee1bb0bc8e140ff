"""The files every contender loads, built from the project's reference model.

The model itself is ``converters.reference`` (LightGBM binary classifier, 300 trees, 31
leaves, on ``make_classification(n_samples=50_000, n_features=32, n_informative=16,
random_state=0)``, converted to ONNX by the converters package). Training takes a while, so
the files are written once into the work directory and reused while the spec is unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.reference import REFERENCE, reference_data
from converters.reference import build_reference as train_reference

MODEL_NAME = "reference"
N_FEATURES = REFERENCE.n_features
ROWS = 1024


@dataclass(frozen=True)
class ReferenceFiles:
    """Paths of the built reference model files.

    Attributes:
        onnx: the ONNX conversion (input ``input`` FP32 [N, 32]; outputs ``label``,
            ``probabilities``).
        lightgbm: the native LightGBM text model (naive server, MLServer).
        rows: float32 [1024, 32] sample rows from the training data (.npy, ``build_rows``).
        repository: a model repository ``<repo>/reference/1/model.onnx``.
    """

    onnx: Path
    lightgbm: Path
    rows: Path
    repository: Path


def build_rows(work_dir: Path) -> Path:
    """Write (once) the first 1024 rows of the reference data; needs no training.

    Load generators send these rows, so contenders that need no model (the echo servers)
    never wait for training.
    """
    path = work_dir / "rows.npy"
    if not path.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        tmp = work_dir / "rows.tmp.npy"
        np.save(tmp, np.ascontiguousarray(reference_data(REFERENCE)[0][:ROWS]))
        tmp.replace(path)
    return path


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
    stamp = root / "spec.json"
    spec = json.dumps(dataclasses.asdict(REFERENCE), sort_keys=True)
    if stamp.exists() and stamp.read_text() == spec and files.onnx.exists():
        return files
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    reference = train_reference(REFERENCE)
    files.onnx.write_bytes(reference.conversion.onnx)
    reference.model.booster_.save_model(str(files.lightgbm))
    version_dir = files.repository / MODEL_NAME / "1"
    version_dir.mkdir(parents=True)
    shutil.copyfile(files.onnx, version_dir / "model.onnx")
    stamp.write_text(spec)
    return files
