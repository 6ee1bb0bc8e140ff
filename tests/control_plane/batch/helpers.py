"""Batch test material: a tiny real converted classifier, input files, a job folder."""

from __future__ import annotations

import functools
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

from control_plane.batch.fingerprint import job_fingerprint
from control_plane.batch.models import BatchOptions
from control_plane.batch.shards import JOB_FILE, JobDescription, save_json
from control_plane.batch.sources import list_inputs
from converters import convert

FEATURES = ("f0", "f1", "f2", "f3")
ROOT = Path(__file__).resolve().parents[3]


@functools.cache
def model_bytes() -> bytes:
    """A real converted LogisticRegression (4 features, 3 classes), built once."""
    import pandas as pd

    rng = np.random.default_rng(7)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    model = LogisticRegression(max_iter=200).fit(frame, y)
    return convert(model, frame.iloc[:20]).onnx


def input_table(rows: int, start: int = 0, seed: int = 0) -> pa.Table:
    """``rows`` rows with an ``id`` column (start, start+1, ...), four features and a note."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {"id": np.arange(start, start + rows, dtype=np.int64)}
    for name in FEATURES:
        columns[name] = rng.normal(size=rows)
    columns["note"] = [f"n{i}" for i in range(start, start + rows)]
    return pa.table(columns)


def write_inputs(folder: Path, sizes: list[int], kind: str = "parquet") -> Path:
    """Files of the given row counts in ``folder`` (ids continue across files)."""
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for index, rows in enumerate(sizes):
        table = input_table(rows, start, seed=index)
        path = folder / f"in-{index:03d}.{kind}"
        if kind == "csv":
            pacsv.write_csv(table, path)
        else:
            pq.write_table(table, path, row_group_size=max(1, rows // 3 or 1))
        start += rows
    return folder


def prepare_job(
    tmp: Path, input_path: Path, options: BatchOptions, output: Path | None = None
) -> Path:
    """An output folder with ``job.json`` for ``input_path`` (what the service writes)."""
    onnx = tmp / "model.onnx"
    onnx.write_bytes(model_bytes())
    output = output or tmp / f"out-{uuid.uuid4().hex[:8]}"
    output.mkdir(parents=True, exist_ok=True)
    import hashlib

    sha = hashlib.sha256(model_bytes()).hexdigest()
    files = list_inputs(input_path)
    description = JobDescription(
        job_id=uuid.uuid4().hex,
        fingerprint=job_fingerprint("tiny", 1, sha, files, options),
        model="tiny",
        version=1,
        onnx_path=str(onnx),
        onnx_sha256=sha,
        input=str(input_path),
        options=options,
    )
    save_json(output / JOB_FILE, description)
    return output


def start_runner(output: Path) -> subprocess.Popen[bytes]:
    """The job process for ``output``, in its own process group (so a test can kill it all)."""
    return subprocess.Popen(
        [sys.executable, "-m", "control_plane.batch.runner", str(output)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
