"""Properties 33-36 of batch jobs, on real files and real job processes.

Example counts are small: every example starts job processes (spawned workers importing
onnxruntime), so the four properties run in about a minute together.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.batch.models import BatchOptions, JobState, OutputFormat
from control_plane.batch.runner import JobRun, read_progress
from control_plane.batch.shards import read_manifest, read_results, sha256_of
from tests.control_plane.batch.helpers import prepare_job, start_runner, write_inputs

pytestmark = pytest.mark.slow

sizes = st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=3)
slow = settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _fresh(tmp_path: Path) -> Path:
    folder = tmp_path / f"ex-{time.monotonic_ns()}"
    folder.mkdir()
    return folder


@slow
@given(
    sizes=sizes,
    chunk=st.integers(min_value=1, max_value=150),
    workers=st.integers(min_value=1, max_value=2),
    kind=st.sampled_from(["csv", "parquet"]),
)
def test_property_33_batch_processes_all_records(
    tmp_path: Path, sizes: list[int], chunk: int, workers: int, kind: str
) -> None:
    """Every input row appears in the output exactly once, with the model's name and version."""
    work = _fresh(tmp_path)
    inputs = write_inputs(work / "in", sizes, kind)
    options = BatchOptions(chunk_size=chunk, workers=workers, id_columns=("id",))
    output = prepare_job(work, inputs, options)
    assert JobRun(output).run() is JobState.SUCCEEDED
    results = read_results(output)
    assert sorted(_column(results, "id")) == list(range(sum(sizes)))
    assert set(_column(results, "model")) <= {"tiny"}
    assert set(_column(results, "model_version")) <= {1}


def _column(table: pa.Table, name: str) -> list[Any]:
    """A column's values; an input of empty files has no shard, so no columns."""
    return table.column(name).to_pylist() if table.num_columns else []


@settings(max_examples=2, deadline=None)
@given(chunk=st.integers(min_value=5, max_value=60), workers=st.integers(1, 2))
def test_property_34_progress_updates(
    tmp_path_factory: pytest.TempPathFactory, chunk: int, workers: int
) -> None:
    """Progress read while the job runs never goes back, never passes the total, and ends
    at the total with state succeeded; rows/s and ETA are reported while it runs."""
    work = tmp_path_factory.mktemp("p34")
    inputs = write_inputs(work / "in", [900, 300])
    output = prepare_job(work, inputs, BatchOptions(chunk_size=chunk, workers=workers))
    process = start_runner(output)
    seen = []
    while process.poll() is None:
        progress = read_progress(output)
        if progress is not None:
            seen.append(progress)
        time.sleep(0.01)
    final = read_progress(output)
    assert final is not None
    seen.append(final)
    done = [p.rows_done for p in seen]
    assert done == sorted(done)
    assert all(p.rows_done <= p.rows_total or p.rows_total == 0 for p in seen)
    assert (final.state, final.rows_done, final.rows_total) == (JobState.SUCCEEDED, 1200, 1200)
    assert final.shards_done == -(-900 // chunk) + -(-300 // chunk)
    assert final.rows_per_s > 0
    assert final.eta_s == 0.0
    states = [p.state for p in seen]
    assert states == sorted(states, key=lambda s: s is JobState.SUCCEEDED)
    assert set(states) <= {JobState.RUNNING, JobState.SUCCEEDED}


@slow
@given(
    sizes=sizes,
    chunk=st.integers(min_value=1, max_value=120),
    fmt=st.sampled_from(list(OutputFormat)),
)
def test_property_35_results_storage(
    tmp_path: Path, sizes: list[int], chunk: int, fmt: OutputFormat
) -> None:
    """Each shard is in the manifest with its true row count and checksum; no file is left
    half-written; the manifest covers every chunk and nothing else."""
    work = _fresh(tmp_path)
    inputs = write_inputs(work / "in", sizes)
    output = prepare_job(work, inputs, BatchOptions(chunk_size=chunk, output_format=fmt))
    assert JobRun(output).run() is JobState.SUCCEEDED
    manifest = read_manifest(output)
    assert manifest is not None
    assert manifest.complete
    expected = {(f, c) for f, rows in enumerate(sizes) for c in range(-(-rows // chunk))}
    assert {(s.file, s.chunk) for s in manifest.shards} == expected
    assert len(manifest.shards) == len(expected)
    for shard in manifest.shards:
        path = output / shard.path
        assert sha256_of(path) == shard.sha256
        table = pacsv.read_csv(path) if fmt is OutputFormat.CSV else pq.read_table(path)
        assert table.num_rows == shard.rows
    assert {p.name for p in output.glob("part-*")} == {s.path for s in manifest.shards}
    assert not list(output.glob(".tmp-*"))
    assert manifest.rows_total == sum(s.rows for s in manifest.shards) == sum(sizes)


def _kill_after(output: Path, shards: int, delay: float) -> None:
    """Start the job process, let it commit ``shards`` shards, wait ``delay``, kill it all."""
    process = start_runner(output)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        manifest = read_manifest(output)
        if manifest is not None and len(manifest.shards) >= shards:
            break
        time.sleep(0.005)
    time.sleep(delay)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@settings(max_examples=3, deadline=None)
@given(
    kills=st.lists(st.tuples(st.integers(0, 20), st.floats(0.0, 0.3)), min_size=1, max_size=2),
    workers=st.integers(1, 2),
    chunk=st.integers(10, 80),
)
def test_property_36_failure_recovery(
    tmp_path_factory: pytest.TempPathFactory,
    kills: list[tuple[int, float]],
    workers: int,
    chunk: int,
) -> None:
    """Killed (SIGKILL to the job process and its workers) at hypothesis-chosen points, then
    resumed: the final output holds every input row exactly once."""
    work = tmp_path_factory.mktemp("p36")
    inputs = write_inputs(work / "in", [700, 250])
    options = BatchOptions(chunk_size=chunk, workers=workers, id_columns=("id",))
    output = prepare_job(work, inputs, options)
    for shards, delay in kills:
        _kill_after(output, shards, delay)
    assert JobRun(output).run() is JobState.SUCCEEDED
    assert sorted(read_results(output).column("id").to_pylist()) == list(range(950))
    manifest = read_manifest(output)
    assert manifest is not None
    assert {p.name for p in output.glob("part-*")} == {s.path for s in manifest.shards}
