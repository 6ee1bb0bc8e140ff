"""The job process on real files: exactly-once output, bad input, cancel at a shard boundary."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from control_plane.batch.models import BadRowPolicy, BatchOptions, JobState, OutputFormat
from control_plane.batch.runner import JobRun, read_progress
from control_plane.batch.schema import check_schema
from control_plane.batch.scoring import BadRows, ChunkScorer
from control_plane.batch.shards import read_manifest, read_results
from control_plane.batch.sources import list_inputs, read_schema
from modelyard.errors import InvalidArgument
from tests.control_plane.batch.helpers import (
    input_table,
    model_bytes,
    prepare_job,
    start_runner,
    write_inputs,
)
from tests.file_limits import file_size_limit

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_folder_scored_exactly_once_by_two_workers(tmp_path: Path, kind: str) -> None:
    inputs = write_inputs(tmp_path / "in", [250, 101], kind)
    options = BatchOptions(chunk_size=40, workers=2, id_columns=("id",), carry_columns=("note",))
    output = prepare_job(tmp_path, inputs, options)
    assert JobRun(output).run() is JobState.SUCCEEDED
    results = read_results(output)
    assert sorted(results.column("id").to_pylist()) == list(range(351))
    assert results.column_names == [
        "id", "note", "label", "probability_0", "probability_1", "probability_2",
        "model", "model_version",
    ]  # fmt: skip
    assert set(results.column("model").to_pylist()) == {"tiny"}
    assert set(results.column("model_version").to_pylist()) == {1}
    sums = pc.add(
        pc.add(results["probability_0"], results["probability_1"]), results["probability_2"]
    )
    assert pc.max(pc.abs(pc.subtract(sums, 1.0))).as_py() < 1e-5
    manifest = read_manifest(output)
    assert manifest is not None
    assert manifest.complete
    assert len(manifest.shards) == 7 + 3


def test_results_match_one_session_scoring_the_whole_table(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", [123])
    output = prepare_job(tmp_path, inputs, BatchOptions(chunk_size=50, id_columns=("id",)))
    assert JobRun(output).run() is JobState.SUCCEEDED
    results = read_results(output).sort_by("id")
    whole = ChunkScorer(model_bytes(), model="tiny", version=1, keep_columns=("id",))
    expected = whole.score(pq.read_table(inputs / "in-000.parquet")).results
    assert results.column("label").equals(expected.column("label"))
    assert results.column("probability_1").equals(expected.column("probability_1"))


def test_csv_output_format(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", [30])
    options = BatchOptions(chunk_size=7, id_columns=("id",), output_format=OutputFormat.CSV)
    output = prepare_job(tmp_path, inputs, options)
    assert JobRun(output).run() is JobState.SUCCEEDED
    assert sorted(p.name for p in output.glob("part-*"))[0] == "part-00000-000000.csv"
    assert sorted(read_results(output).column("id").to_pylist()) == list(range(30))


def _with_nulls(path: Path) -> Path:
    table = input_table(20)
    f1 = pa.array([None if i in (3, 11) else v for i, v in enumerate(table["f1"].to_pylist())])
    table = table.set_column(table.schema.get_field_index("f1"), "f1", f1)
    path.mkdir()
    pq.write_table(table, path / "in.parquet")
    return path


def test_bad_rows_go_to_the_errors_file_with_their_reason(tmp_path: Path) -> None:
    inputs = _with_nulls(tmp_path / "in")
    options = BatchOptions(chunk_size=8, id_columns=("id",), bad_rows=BadRowPolicy.ERRORS_FILE)
    output = prepare_job(tmp_path, inputs, options)
    assert JobRun(output).run() is JobState.SUCCEEDED
    assert sorted(read_results(output).column("id").to_pylist()) == sorted(set(range(20)) - {3, 11})
    errors = pa.concat_tables(pq.read_table(p) for p in sorted(output.glob("errors-*")))
    assert errors.column("id").to_pylist() == [3, 11]
    assert errors.column("error").to_pylist() == ["missing value in column 'f1'"] * 2
    progress = read_progress(output)
    assert progress is not None
    assert (progress.rows_done, progress.rows_failed) == (20, 2)


def test_bad_rows_fail_the_job_under_the_fail_policy(tmp_path: Path) -> None:
    inputs = _with_nulls(tmp_path / "in")
    output = prepare_job(tmp_path, inputs, BatchOptions(chunk_size=8))
    assert JobRun(output).run() is JobState.FAILED
    progress = read_progress(output)
    assert progress is not None
    assert progress.error is not None
    assert "in.parquet chunk 0: column 'f1' has a missing value" in progress.error
    with pytest.raises(BadRows):
        ChunkScorer(model_bytes(), model="t", version=1).score(pq.read_table(inputs))


def test_schema_check_names_missing_and_mistyped_columns(tmp_path: Path) -> None:
    table = input_table(5).drop_columns(["f2"])
    table = table.set_column(1, "f0", pa.array(["a"] * 5))
    pq.write_table(table, tmp_path / "bad.parquet")
    info = ChunkScorer(model_bytes(), model="t", version=1).info
    file = list_inputs(tmp_path / "bad.parquet")[0]
    with pytest.raises(InvalidArgument) as raised:
        check_schema(info, read_schema(file), ("id", "customer"), file.name)
    assert str(raised.value) == (
        "input bad.parquet does not fit the model: column 'f0' is string, the model expects "
        "FP32; missing column 'f2'; missing column 'customer'"
    )


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    file = list_inputs(tmp_path)[0]
    with pytest.raises(InvalidArgument, match=r"input file broken\.parquet is unreadable"):
        read_schema(file)
    with pytest.raises(InvalidArgument, match=r"holds no \.csv or \.parquet"):
        list_inputs(_empty(tmp_path))
    with pytest.raises(InvalidArgument, match="does not exist"):
        list_inputs(tmp_path / "missing")


@pytest.mark.parametrize(
    "raised",
    [
        pa.ArrowNotImplementedError("Integers with more than 64 bits not implemented"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ],
)
def test_a_damaged_footer_is_named_whatever_arrow_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: Exception
) -> None:
    """A fuzz flipped bytes in Parquet footers: ArrowNotImplementedError was a 500, and
    UnicodeDecodeError a 400 "request body is not valid UTF-8"; only ArrowInvalid was named."""
    pq.write_table(input_table(5), tmp_path / "x.parquet")
    file = list_inputs(tmp_path)[0]

    def damaged(*args: object, **kwargs: object) -> pa.Schema:
        raise raised

    monkeypatch.setattr(pq, "read_schema", damaged)  # NOTE: the module sources reads through
    with pytest.raises(InvalidArgument, match=r"input file x\.parquet is unreadable"):
        read_schema(file)


def _empty(tmp_path: Path) -> Path:
    empty = tmp_path / "empty"
    empty.mkdir()
    return empty


def test_sigterm_cancels_at_a_shard_boundary_and_resume_completes(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", [6000])
    options = BatchOptions(chunk_size=20, id_columns=("id",))
    output = prepare_job(tmp_path, inputs, options)
    process = start_runner(output)
    _wait_for_shards(output, 2)
    # NOTE: the job and its workers are frozen at once, so a test process descheduled here
    # cannot let the job finish all 300 shards before it is told to stop
    os.killpg(process.pid, signal.SIGSTOP)
    process.send_signal(signal.SIGTERM)
    os.killpg(process.pid, signal.SIGCONT)
    assert process.wait(timeout=60) == 1
    progress = read_progress(output)
    assert progress is not None
    assert progress.state is JobState.CANCELLED
    manifest = read_manifest(output)
    assert manifest is not None
    assert not manifest.complete
    assert not list(output.glob(".tmp-*"))
    assert len(list(output.glob("part-*"))) == len(manifest.shards) < 300
    assert JobRun(output).run() is JobState.SUCCEEDED
    assert sorted(read_results(output).column("id").to_pylist()) == list(range(6000))


def _wait_for_shards(output: Path, count: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        manifest = read_manifest(output)  # replaced atomically: never seen half-written
        if manifest is not None and len(manifest.shards) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{output} never reached {count} committed shards")


def test_a_worker_that_cannot_write_its_shard_fails_the_job_with_the_cause(
    tmp_path: Path,
) -> None:
    """A real write failure, from the kernel: the file size limit, inherited by the worker
    processes (:func:`~tests.file_limits.file_size_limit`). Before, only ModelyardError was
    reported: the worker died with the cause in its null stderr, and the job failed later as
    "a worker process died"."""
    inputs = write_inputs(tmp_path / "in", [200])
    output = prepare_job(tmp_path, inputs, BatchOptions(chunk_size=50, id_columns=("id",)))
    with file_size_limit(1024):
        state = JobRun(output).run()
    assert state is JobState.FAILED
    progress = read_progress(output)
    assert progress is not None
    assert progress.error is not None
    assert progress.error.startswith("worker "), progress.error
    assert "OSError" in progress.error
    assert "File too large" in progress.error


def test_a_value_beyond_fp32_is_a_bad_row() -> None:
    """1e308 in a float64 column became infinity when fed as FP32, and the row was scored as
    good (NaN probabilities, label 0; a fuzz of batch inputs, 2026-12-06)."""
    table = input_table(4)
    table = table.set_column(1, "f0", pa.array([0.5, 1e308, -1e300, 3e38]))
    scorer = ChunkScorer(
        model_bytes(), model="t", version=1, bad_rows=BadRowPolicy.ERRORS_FILE, keep_columns=["id"]
    )
    scored = scorer.score(table)
    assert scored.results.column("id").to_pylist() == [0, 3]  # 3e38 fits FP32
    assert scored.errors is not None
    assert (
        scored.errors.column("error").to_pylist()
        == ["value beyond FP32's range in column 'f0'"] * 2
    )
    with pytest.raises(BadRows, match="column 'f0' has a value beyond FP32's range"):
        ChunkScorer(model_bytes(), model="t", version=1).score(table)


def test_a_repeated_column_is_named_as_repeated(tmp_path: Path) -> None:
    """It was reported as missing (pyarrow's get_field_index answers -1 for both)."""
    table = input_table(3)
    table = table.append_column("f0", table.column("f0")).append_column("id", table.column("id"))
    pq.write_table(table, tmp_path / "twice.parquet")
    info = ChunkScorer(model_bytes(), model="t", version=1).info
    file = list_inputs(tmp_path / "twice.parquet")[0]
    with pytest.raises(InvalidArgument) as raised:
        check_schema(info, read_schema(file), ("id",), file.name)
    assert str(raised.value) == (
        "input twice.parquet does not fit the model: column 'f0' appears more than once; "
        "column 'id' appears more than once"
    )
