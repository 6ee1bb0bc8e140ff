"""The input of a job: CSV and Parquet files, read in streaming chunks of a fixed row count.

A job's input is one file or a folder of them (``*.csv``, ``*.parquet``, sorted by name).
Chunk ``k`` of a file is always the same rows (``k * chunk_size`` onwards, by absolute row
position), whatever process reads it and however the file is cut into row groups, so a chunk
is the unit of output (one shard) and of recovery.

:func:`read_chunks` yields the chunks a caller asks for (all, or a worker's block):

- **Parquet** is read by row group. The footer gives each group's row count;
  :func:`~control_plane.batch.partition.group_runs` picks the groups under the wanted chunks,
  and each run of touching groups is streamed once (``iter_batches(row_groups=...)``) and cut
  into chunks by absolute row. Groups under no wanted chunk are never read or decoded -- so a
  worker decodes its own block, and a resumed job skips the groups of committed chunks.
- **CSV** cannot seek to a row: it is parsed from the start (``open_csv``, 4 MiB blocks, types
  fixed by the first block), chunks that are not wanted are dropped, and parsing stops after
  the last wanted chunk. Every worker parses the file up to the end of its block.

Memory is bounded by the chunk, not by the file or the row group: at most one chunk being
assembled plus one record batch (65,536 rows) or CSV block, and per Parquet column a read
buffer of ``_PARQUET_BUFFER`` bytes (``buffer_size``: unbuffered, the reader loads each column
chunk of a row group whole -- a 1M-row group would be held entire) with ``pre_buffer=False``
(with pre-buffering, the reader keeps every row group it read until it is closed: memory grew
with the file, 1.16 GiB at 2M rows vs 658 MiB at 200k).

>>> sizes = [len(t) for t in rechunk(iter([pa.table({"x": range(5)})] * 3), 4)]
>>> sizes
[4, 4, 4, 3]
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from control_plane.batch.partition import chunk_count, group_runs
from modelyard.errors import InvalidArgument

SUFFIXES = (".csv", ".parquet")
_CSV_BLOCK = 4 << 20
_PARQUET_BATCH = 65_536
_PARQUET_BUFFER = 1 << 20


@dataclasses.dataclass(frozen=True)
class InputFile:
    """One input file and what identifies its content for the fingerprint."""

    path: Path
    name: str
    size: int
    mtime_ns: int

    @property
    def is_parquet(self) -> bool:
        """Whether the file is Parquet (else CSV)."""
        return self.path.suffix == ".parquet"


def list_inputs(path: Path) -> list[InputFile]:
    """The input files of ``path`` (a file, or a folder's CSV/Parquet files by name).

    Raises:
        InvalidArgument: the path does not exist, is not CSV/Parquet, holds no such file, or
            holds a link to a file outside it (the folder is checked to be under the data root;
            a link in it must not lead out).
    """
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        folder = path.resolve()
        for file in files:  # NOTE: is_file() follows links: one could read outside the root
            if not file.resolve().is_relative_to(folder):
                raise InvalidArgument(
                    f"input file {file.name} in {path.name} is a link leading out of its folder"
                )
    else:
        raise InvalidArgument(f"input {path} does not exist")
    if not files:
        raise InvalidArgument(f"input folder {path} holds no .csv or .parquet file")
    if any(p.suffix not in SUFFIXES for p in files):
        raise InvalidArgument(f"input {path} is not a .csv or .parquet file")
    inputs = []
    for file in files:
        stat = file.stat()
        inputs.append(InputFile(file, file.name, stat.st_size, stat.st_mtime_ns))
    return inputs


def input_identity(files: Iterable[InputFile]) -> str:
    """A hash of the files' names, sizes and modification times (content changes move it)."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file.size}\0{file.mtime_ns}\n".encode())
    return digest.hexdigest()


UNREADABLE = (OSError, pa.ArrowException, UnicodeDecodeError)
"""What reading a damaged file raises: not only ``ArrowInvalid`` (a flipped byte in a Parquet
footer raised ``ArrowNotImplementedError``, a 500, or ``UnicodeDecodeError``, which the error
handler took for the request body's; a non-UTF-8 CSV header failed a job naming no file)."""


def read_schema(file: InputFile) -> pa.Schema:
    """The file's schema (Parquet footer, or the types inferred from the CSV's first block).

    Raises:
        InvalidArgument: the file cannot be read as its kind.
    """
    try:
        if file.is_parquet:
            return pq.read_schema(file.path)
        with _open_csv(file.path) as reader:
            return reader.schema
    except UNREADABLE as error:
        raise InvalidArgument(f"input file {file.name} is unreadable: {error}") from None


def count_rows(file: InputFile) -> int:
    """Rows of the file (Parquet: from the footer; CSV: one streaming pass).

    Raises:
        InvalidArgument: the file cannot be read.
    """
    try:
        if file.is_parquet:
            return int(_open_parquet(file.path).metadata.num_rows)
        with _open_csv(file.path) as reader:
            return sum(batch.num_rows for batch in reader)
    except UNREADABLE as error:
        raise InvalidArgument(f"input file {file.name} is unreadable: {error}") from None


def _open_csv(path: Path) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK))


def _open_parquet(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=_PARQUET_BUFFER)


def _csv_batches(file: InputFile, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    # The first block's inferred types hold for the whole file: a later block that does not
    # fit them is an error, not a silent change of type between shards.
    reader = pacsv.open_csv(
        file.path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
        convert_options=pacsv.ConvertOptions(column_types=schema),
    )
    with reader:
        yield from reader


def rechunk(batches: Iterator[pa.RecordBatch | pa.Table], size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows from ``batches`` (the last one may be shorter)."""
    pending: list[pa.Table] = []
    held = 0
    for batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        while table.num_rows:
            take = min(size - held, table.num_rows)
            pending.append(table.slice(0, take))
            held += take
            table = table.slice(take)
            if held == size:
                yield pa.concat_tables(pending).combine_chunks()
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).combine_chunks()


def read_chunks(
    file: InputFile,
    chunk_size: int,
    columns: list[str] | None = None,
    wanted: Collection[int] | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """``(chunk index, rows)`` of the file's ``wanted`` chunks (every chunk when None), in
    order; only ``columns`` (every column when None), in that order.

    Raises:
        InvalidArgument: the file cannot be read (also part-way through).
    """
    try:
        if file.is_parquet:
            chunks = _parquet_chunks(file, chunk_size, columns, wanted)
        else:
            chunks = _csv_chunks(file, chunk_size, wanted)
        for index, table in chunks:
            yield index, (table.select(columns) if columns else table)
    except UNREADABLE as error:
        raise InvalidArgument(f"input file {file.name} is unreadable: {error}") from None


def _csv_chunks(
    file: InputFile, chunk_size: int, wanted: Collection[int] | None
) -> Iterator[tuple[int, pa.Table]]:
    keep = None if wanted is None else frozenset(wanted)
    last = None if keep is None else max(keep, default=-1)
    if last == -1:
        return
    for index, table in enumerate(rechunk(_csv_batches(file, read_schema(file)), chunk_size)):
        if keep is None or index in keep:
            yield index, table
        if last is not None and index >= last:
            return  # NOTE: stop parsing: the rest of the file holds no wanted chunk


def _parquet_chunks(
    file: InputFile, chunk_size: int, columns: list[str] | None, wanted: Collection[int] | None
) -> Iterator[tuple[int, pa.Table]]:
    parquet = _open_parquet(file.path)
    metadata = parquet.metadata
    total = int(metadata.num_rows)
    group_rows = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    every = range(chunk_count(total, chunk_size)) if wanted is None else wanted
    for run in group_runs(group_rows, chunk_size, every):
        batches = parquet.iter_batches(
            batch_size=_PARQUET_BATCH, row_groups=list(run.groups), columns=columns
        )
        try:
            yield from cut(batches, run.first_row, chunk_size, run.chunks, total)
        finally:
            batches.close()  # NOTE: stop decoding the run's last group past the last chunk


def cut(
    batches: Iterable[pa.RecordBatch],
    first_row: int,
    chunk_size: int,
    chunks: Iterable[int],
    total: int,
) -> Iterator[tuple[int, pa.Table]]:
    """The ``chunks`` (ascending) of a stream of ``batches`` that starts at file row
    ``first_row`` of a file of ``total`` rows; rows of other chunks are dropped, and the
    stream is not read past the last wanted row.

    Raises:
        pyarrow.ArrowInvalid: the stream ends before the last wanted chunk is complete.

    >>> stream = [pa.record_batch({"x": range(i, i + 4)}) for i in range(10, 22, 4)]
    >>> [(k, t["x"].to_pylist()) for k, t in cut(stream, 10, 3, [4, 6], 22)]
    [(4, [12, 13, 14]), (6, [18, 19, 20])]
    """
    targets = iter(chunks)
    target = next(targets, None)
    position, pending = first_row, list[pa.RecordBatch]()
    for batch in batches:
        offset = 0
        while target is not None and offset < batch.num_rows:
            start, end = target * chunk_size, min((target + 1) * chunk_size, total)
            at = position + offset
            if at < start:  # rows of no wanted chunk
                offset += min(start - at, batch.num_rows - offset)
                continue
            take = min(end - at, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            offset += take
            if at + take == end:
                yield target, pa.Table.from_batches(pending).combine_chunks()
                pending, target = [], next(targets, None)
        position += batch.num_rows
        if target is None:
            return
    if target is not None:
        raise pa.ArrowInvalid(f"the file ended at row {position}, inside chunk {target}")


__all__ = [
    "InputFile",
    "count_rows",
    "cut",
    "input_identity",
    "list_inputs",
    "read_chunks",
    "read_schema",
    "rechunk",
]
