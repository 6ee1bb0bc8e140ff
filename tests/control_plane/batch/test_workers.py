"""A worker scores and writes shards without pandas ever being imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.control_plane.batch.helpers import ROOT, model_bytes, write_inputs

_SCRIPT = """
import sys
from pathlib import Path
from control_plane.batch.workers import _without_pandas
_without_pandas()
import pyarrow.parquet as pq
from control_plane.batch.models import OutputFormat
from control_plane.batch.scoring import ChunkScorer
from control_plane.batch.shards import write_aside
folder = Path(sys.argv[1])
scorer = ChunkScorer((folder / "model.onnx").read_bytes(), model="t", version=1,
                     keep_columns=("id",))
scored = scorer.score(pq.read_table(folder / "in" / "in-000.parquet"))
write_aside(folder, scored.results, OutputFormat.PARQUET)
write_aside(folder, scored.results, OutputFormat.CSV)
try:
    import pandas
except ImportError:
    print("refused", "pandas" in sys.modules, scored.results.num_rows)
"""


@pytest.mark.slow
def test_a_worker_scores_and_writes_without_pandas(tmp_path: Path) -> None:
    write_inputs(tmp_path / "in", [50])
    (tmp_path / "model.onnx").write_bytes(model_bytes())
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "False", "50"]
