"""Partitioning of a job's chunks over workers, and what each worker decodes.

In-process tests read every worker's block with the workers' own reader (``read_block``) and
record what pyarrow decodes: ``ParquetFile.iter_batches`` is wrapped to note the row groups it
was asked for and the rows it yielded, and every other way to read a Parquet file is refused.
End-to-end tests run real jobs (spawned workers) on several row-group layouts, and a resume.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.batch.models import BatchOptions, JobState
from control_plane.batch.partition import ChunkKey, assign, chunk_count, pending_chunks
from control_plane.batch.runner import JobRun
from control_plane.batch.shards import MANIFEST, read_manifest, read_results
from control_plane.batch.sources import InputFile, list_inputs, read_chunks
from control_plane.batch.workers import read_block
from tests.control_plane.batch.helpers import input_table, prepare_job

COLUMNS = ["f0", "f1", "f2", "f3", "id"]


class Decoded:
    """What ``ParquetFile.iter_batches`` was asked for and yielded, per file name."""

    def __init__(self) -> None:
        self.groups: list[tuple[str, tuple[int, ...]]] = []
        self.rows: dict[str, int] = {}

    def groups_of(self, name: str) -> list[int]:
        """Every row group requested from file ``name``, with repeats."""
        return [g for file, groups in self.groups if file == name for g in groups]


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Decoded:
    """Record pyarrow's Parquet decoding; refuse whole-file and whole-group reads."""
    record = Decoded()
    original = pq.ParquetFile.iter_batches

    def iter_batches(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Iterator[Any]:
        groups = kwargs.get("row_groups")
        assert groups is not None, "iter_batches without row_groups reads the whole file"
        name = str(self._test_name)
        record.groups.append((name, tuple(groups)))
        for batch in original(self, *args, **kwargs):
            record.rows[name] = record.rows.get(name, 0) + batch.num_rows
            yield batch

    def refused(*_: Any, **__: Any) -> None:
        raise AssertionError("read whole row groups or files")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    for method in ("read", "read_row_group", "read_row_groups"):
        monkeypatch.setattr(pq.ParquetFile, method, refused)
    original_init = pq.ParquetFile.__init__

    def init(self: pq.ParquetFile, source: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, source, *args, **kwargs)
        self._test_name = Path(str(source)).name

    monkeypatch.setattr(pq.ParquetFile, "__init__", init)
    return record


def _write(folder: Path, layouts: list[tuple[int, int]]) -> list[InputFile]:
    """Parquet files of ``(rows, row-group size)``; ids continue across files."""
    folder.mkdir(parents=True, exist_ok=True)
    start = 0
    for index, (rows, group) in enumerate(layouts):
        table = input_table(rows, start, seed=index).drop_columns(["note"])
        pq.write_table(table, folder / f"in-{index:03d}.parquet", row_group_size=group)
        start += rows
    return list_inputs(folder)


def _groups_under(file: InputFile, chunk_size: int, chunks: list[int]) -> set[int]:
    """Row groups of ``file`` holding a row of one of ``chunks``."""
    metadata = pq.read_metadata(file.path)
    rows = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    starts = [0, *itertools.accumulate(rows)]
    spans = [(c * chunk_size, (c + 1) * chunk_size) for c in chunks]
    return {
        g
        for g in range(len(rows))
        if rows[g] and any(a < starts[g + 1] and starts[g] < b for a, b in spans)
    }


def _check_blocks(
    files: list[InputFile], chunk_size: int, workers: int, done: set[ChunkKey], decoded: Decoded
) -> None:
    """Every pending row is read exactly once across the workers, each chunk is its own
    rows, and each worker decodes only the row groups under its block, each group once."""
    counts = [pq.read_metadata(f.path).num_rows for f in files]
    blocks = assign(pending_chunks(counts, chunk_size, done), workers)
    offsets = [0, *itertools.accumulate(counts)]
    seen: list[int] = []
    for block in blocks:
        decoded.groups.clear()
        for (number, chunk), table in read_block(files, block, chunk_size, COLUMNS):
            first = offsets[number] + chunk * chunk_size
            expected = list(range(first, min(first + chunk_size, offsets[number + 1])))
            assert table.column("id").to_pylist() == expected
            assert table.column_names == COLUMNS
            seen += expected
        for index, file in enumerate(files):
            mine = [c for f, c in block if f == index]
            requested = decoded.groups_of(file.name)
            assert len(requested) == len(set(requested)), "a row group was decoded twice"
            assert set(requested) == _groups_under(file, chunk_size, mine)
    pending = [
        offsets[f] + r
        for f, rows in enumerate(counts)
        for r in range(rows)
        if (f, r // chunk_size) not in done
    ]
    assert sorted(seen) == pending


LAYOUTS = {
    "groups smaller than chunks": [(230, 7)],
    "groups equal to chunks": [(200, 20)],
    "groups larger than chunks": [(230, 100)],
    "one group for the whole file": [(1000, 1000)],
    "several files, mixed groups and an empty file": [(95, 30), (0, 10), (101, 101), (64, 5)],
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=list(LAYOUTS))
@pytest.mark.parametrize("workers", [1, 2, 3])
def test_blocks_read_every_row_once(
    tmp_path: Path, decoded: Decoded, layout: list[tuple[int, int]], workers: int
) -> None:
    files = _write(tmp_path / "in", layout)
    _check_blocks(files, 20, workers, set(), decoded)
    done = {(0, c) for c in range(0, chunk_count(layout[0][0], 20), 3)}
    _check_blocks(files, 20, workers, done, decoded)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layout=st.lists(st.tuples(st.integers(0, 150), st.integers(1, 80)), min_size=1, max_size=3),
    chunk=st.integers(1, 60),
    workers=st.integers(1, 4),
    done_seed=st.integers(0, 2**16),
)
def test_property_33_workers_read_every_row_once(
    tmp_path_factory: pytest.TempPathFactory,
    decoded: Decoded,
    layout: list[tuple[int, int]],
    chunk: int,
    workers: int,
    done_seed: int,
) -> None:
    """Whatever the row groups, chunk size, worker count and committed chunks, the workers'
    blocks hold every pending row exactly once and each decodes only its own row groups."""
    files = _write(tmp_path_factory.mktemp("p33"), layout)
    keys = [(f, c) for f, (rows, _) in enumerate(layout) for c in range(chunk_count(rows, chunk))]
    rng = np.random.default_rng(done_seed)
    done = {key for key in keys if rng.random() < 0.3}
    _check_blocks(files, chunk, workers, done, decoded)


def test_worker_decodes_only_its_half_and_resume_skips_committed_groups(
    tmp_path: Path, decoded: Decoded
) -> None:
    files = _write(tmp_path / "in", [(1000, 100)])
    counts = [1000]
    first, second = assign(pending_chunks(counts, 50, set()), 2)
    list(read_block(files, first, 50, COLUMNS))
    assert decoded.groups_of("in-000.parquet") == [0, 1, 2, 3, 4]
    assert decoded.rows == {"in-000.parquet": 500}
    decoded.groups.clear()
    decoded.rows.clear()
    list(read_block(files, second, 50, COLUMNS))
    assert decoded.groups_of("in-000.parquet") == [5, 6, 7, 8, 9]
    assert decoded.rows == {"in-000.parquet": 500}
    decoded.groups.clear()
    decoded.rows.clear()
    committed = {(0, c) for c in range(14)}  # rows 0-699: groups 0-6 hold nothing pending
    third, fourth = assign(pending_chunks(counts, 50, committed), 2)
    assert (third, fourth) == ([(0, 14), (0, 15), (0, 16)], [(0, 17), (0, 18), (0, 19)])
    list(read_block(files, third, 50, COLUMNS))
    assert decoded.groups_of("in-000.parquet") == [7, 8]  # rows 700-849
    decoded.groups.clear()
    list(read_block(files, fourth, 50, COLUMNS))
    assert decoded.groups_of("in-000.parquet") == [8, 9]  # rows 850-999


def test_a_huge_row_group_is_streamed_once_not_once_per_chunk(
    tmp_path: Path, decoded: Decoded
) -> None:
    files = _write(tmp_path / "in", [(1000, 1000)])
    chunks = list(read_chunks(files[0], 10, COLUMNS))
    assert [k for k, _ in chunks] == list(range(100))
    assert decoded.groups == [("in-000.parquet", (0,))]
    assert decoded.rows == {"in-000.parquet": 1000}


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=list(LAYOUTS))
def test_jobs_of_two_workers_score_every_row_once(
    tmp_path: Path, layout: list[tuple[int, int]]
) -> None:
    _write(tmp_path / "in", layout)
    options = BatchOptions(chunk_size=20, workers=2, id_columns=("id",))
    output = prepare_job(tmp_path, tmp_path / "in", options)
    assert JobRun(output).run() is JobState.SUCCEEDED
    total = sum(rows for rows, _ in layout)
    assert sorted(read_results(output).column("id").to_pylist()) == list(range(total))


@pytest.mark.slow
def test_resume_with_some_chunks_committed_scores_the_rest_once(tmp_path: Path) -> None:
    _write(tmp_path / "in", [(330, 45), (170, 200)])
    options = BatchOptions(chunk_size=20, workers=2, id_columns=("id",))
    output = prepare_job(tmp_path, tmp_path / "in", options)
    assert JobRun(output).run() is JobState.SUCCEEDED
    # As after a crash between renames and manifest writes: some shards are on disk but not
    # in the manifest (every third), the job not complete.
    manifest = json.loads((output / MANIFEST).read_text())
    manifest["shards"] = [s for i, s in enumerate(manifest["shards"]) if i % 3]
    manifest["complete"] = False
    (output / MANIFEST).write_text(json.dumps(manifest))
    assert JobRun(output).run() is JobState.SUCCEEDED
    assert sorted(read_results(output).column("id").to_pylist()) == list(range(500))
    final = read_manifest(output)
    assert final is not None
    assert final.complete
    assert len(final.shards) == chunk_count(330, 20) + chunk_count(170, 20)


def test_csv_block_reads_only_its_chunks(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv

    pacsv.write_csv(input_table(95), tmp_path / "in.csv")
    file = list_inputs(tmp_path / "in.csv")[0]
    got = [(k, t.column("id").to_pylist()) for k, t in read_chunks(file, 20, COLUMNS, [1, 3])]
    assert got == [(1, list(range(20, 40))), (3, list(range(60, 80)))]
    assert list(read_chunks(file, 20, COLUMNS, [])) == []


def test_tables_keep_the_column_order_asked_for(tmp_path: Path, decoded: Decoded) -> None:
    files = _write(tmp_path / "in", [(30, 8)])
    (_, table), *_ = read_chunks(files[0], 10, ["id", "f3", "f0"], [2])
    assert table.column_names == ["id", "f3", "f0"]
    assert table.column("id").to_pylist() == list(range(20, 30))
