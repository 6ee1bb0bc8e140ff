"""Which worker scores which chunks, and which Parquet row groups hold a set of chunks.

Design. A chunk (``chunk_size`` rows of one input file, by absolute row position) is the unit
of output and of recovery, so its identity never depends on the number of workers or on how
the file was written. What changes with the worker count is only *who* scores it:

- :func:`assign` gives each worker one contiguous block of the pending chunks (in file and
  chunk order), balanced by rows. Contiguous, not round-robin: a worker then needs only the
  row groups under its own block, and a row group is decoded by at most two workers (the
  ones whose blocks meet inside it) instead of by all of them.
- :func:`group_runs` turns the chunks a worker wants from one Parquet file into *runs*: maximal
  sequences of row groups that hold wanted rows and touch each other (row groups of no wanted
  row are skipped whole; empty row groups are ignored). One run is read with one streaming
  reader, so a row group larger than a chunk is decoded once for all its chunks, never once
  per chunk; the rows of a run's first and last groups that belong to no wanted chunk are
  decoded and dropped (Parquet cannot seek to a row inside a group without a page index).

Both are pure functions of row counts; :mod:`control_plane.batch.sources` does the reading.

>>> assign([(0, 0, 10), (0, 1, 10), (0, 2, 5), (1, 0, 10)], 2)
[[(0, 0), (0, 1)], [(0, 2), (1, 0)]]
>>> [(r.groups, r.first_row, r.chunks) for r in group_runs([4, 4, 4, 4], 3, [0, 4])]
[((0,), 0, (0,)), ((3,), 12, (4,))]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

ChunkKey = tuple[int, int]
"""``(input file index, chunk index in that file)``."""


def chunk_count(rows: int, chunk_size: int) -> int:
    """Chunks of a file of ``rows`` rows (the last one may be shorter).

    >>> chunk_count(0, 4), chunk_count(8, 4), chunk_count(9, 4)
    (0, 2, 3)
    """
    return -(-rows // chunk_size)


def pending_chunks(
    row_counts: Sequence[int], chunk_size: int, done: Iterable[ChunkKey]
) -> list[tuple[int, int, int]]:
    """``(file, chunk, rows)`` of every chunk not in ``done``, in file and chunk order.

    >>> pending_chunks([5, 3], 2, {(0, 1)})
    [(0, 0, 2), (0, 2, 1), (1, 0, 2), (1, 1, 1)]
    """
    committed = set(done)
    return [
        (file, chunk, min(chunk_size, rows - chunk * chunk_size))
        for file, rows in enumerate(row_counts)
        for chunk in range(chunk_count(rows, chunk_size))
        if (file, chunk) not in committed
    ]


def assign(chunks: Sequence[tuple[int, int, int]], workers: int) -> list[list[ChunkKey]]:
    """Split ``(file, chunk, rows)`` into ``workers`` contiguous blocks of about equal rows.

    A chunk goes to the worker in whose share of the total rows the chunk's first row falls,
    so blocks stay in order and differ by at most about one chunk.

    >>> assign([(0, c, 1) for c in range(5)], 3)
    [[(0, 0), (0, 1)], [(0, 2)], [(0, 3), (0, 4)]]
    >>> assign([(0, 0, 7)], 2)
    [[], [(0, 0)]]
    """
    blocks: list[list[ChunkKey]] = [[] for _ in range(workers)]
    total = sum(rows for _, _, rows in chunks)
    before = 0
    for file, chunk, rows in chunks:
        # The chunk's middle row decides (not its first): a worker whose share starts late
        # inside a big chunk does not take it, so shares of few, large chunks stay even.
        blocks[min(workers - 1, (2 * before + rows) * workers // max(2 * total, 1))].append(
            (file, chunk)
        )
        before += rows
    return blocks


@dataclasses.dataclass(frozen=True)
class GroupRun:
    """Row groups read as one stream, and the wanted chunks wholly inside them.

    Attributes:
        groups: row-group indices, in file order (each non-empty and touching the next).
        first_row: the file row at which the first group starts.
        chunks: wanted chunk indices whose rows all lie in these groups, ascending.
    """

    groups: tuple[int, ...]
    first_row: int
    chunks: tuple[int, ...]


def group_runs(group_rows: Sequence[int], chunk_size: int, chunks: Iterable[int]) -> list[GroupRun]:
    """The runs of row groups (sizes ``group_rows``) that hold the wanted ``chunks``.

    >>> [(r.groups, r.chunks) for r in group_runs([10], 3, [1, 2])]
    [((0,), (1, 2))]
    >>> [(r.groups, r.chunks) for r in group_runs([2, 0, 2, 2, 2], 3, [0, 2])]
    [((0, 2), (0,)), ((4,), (2,))]
    """
    total = sum(group_rows)
    wanted = sorted({c for c in chunks if 0 <= c < chunk_count(total, chunk_size)})
    spans = [(c * chunk_size, min((c + 1) * chunk_size, total)) for c in wanted]
    runs: list[GroupRun] = []
    groups: list[int] = []
    held: list[int] = []
    start, first, span = 0, 0, 0
    for index, rows in enumerate(group_rows):
        end = start + rows
        while span < len(spans) and spans[span][1] <= start:
            span += 1  # wanted chunks that ended before this group were placed already
        if rows and span < len(spans) and spans[span][0] < end:
            if not groups:
                first = start
            groups.append(index)
            while span < len(spans) and spans[span][1] <= end:
                held.append(wanted[span])
                span += 1
        elif rows and groups:
            runs.append(GroupRun(tuple(groups), first, tuple(held)))
            groups, held = [], []
        start = end
    if groups:
        runs.append(GroupRun(tuple(groups), first, tuple(held)))
    return runs


__all__ = ["ChunkKey", "GroupRun", "assign", "chunk_count", "group_runs", "pending_chunks"]
