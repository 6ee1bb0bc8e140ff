"""The worker processes of a job: started first, told their chunks once the input is known.

Design. A worker is a spawned interpreter that imports pyarrow and onnxruntime and builds one
onnxruntime session (``cores // workers`` intra-op threads, so processes x threads never
exceed the cores). That start-up is paid by every job, so :class:`WorkerPool` starts the
workers *before* the job process checks the fingerprint, clears uncommitted shards and counts
the input (a full parse for CSV): the two overlap. A worker that has its session waits for its
*plan* -- the input files and its block of pending chunks
(:func:`~control_plane.batch.partition.assign`: contiguous, balanced by rows) -- or for
``None`` when the job ended before scoring. It then reads only its chunks
(:func:`~control_plane.batch.sources.read_chunks`: for Parquet only the row groups under
them), scores each, writes the shard aside and reports it on a bounded queue (two shards per
worker, so memory stays flat when commits lag); only the job process renames shards and writes
the manifest. A worker never imports pandas (:func:`_without_pandas`). Workers ignore
SIGINT/SIGTERM (the job process decides when to stop), stop at a shard boundary when the
cancel event is set, and stop when the job process is gone (their shards were never
committed; resume removes them).
"""

from __future__ import annotations

import importlib.abc
import multiprocessing as mp
import os
import queue
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa

from control_plane.batch.partition import ChunkKey
from control_plane.batch.shards import JobDescription, WrittenShard, write_aside
from control_plane.batch.sources import InputFile, read_chunks
from modelyard.errors import ModelyardError

_POLL_S = 0.2

Plan = tuple[list[InputFile], list[ChunkKey]]


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _next_plan(plans: Any, parent: int) -> Plan | None:
    while True:
        try:
            plan: Plan | None = plans.get(timeout=_POLL_S)
            return plan
        except queue.Empty:
            if os.getppid() != parent:
                return None


def read_block(
    files: list[InputFile], block: list[ChunkKey], chunk_size: int, columns: list[str]
) -> Iterator[tuple[ChunkKey, pa.Table]]:
    """The rows of each chunk of ``block``, in order (for Parquet, only the row groups under
    the block are decoded).

    Raises:
        InvalidArgument: an input file cannot be read.
    """
    chunks: dict[int, list[int]] = {}
    for file, chunk in block:
        chunks.setdefault(file, []).append(chunk)
    for file, wanted in chunks.items():
        for chunk, table in read_chunks(files[file], chunk_size, columns, wanted):
            yield (file, chunk), table


class _NoPandas(importlib.abc.MetaPathFinder):
    """An import finder that refuses pandas (see :func:`_without_pandas`)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """Raise ModuleNotFoundError for ``pandas`` and its submodules; else defer."""
        if fullname.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"no pandas in a batch worker: {fullname}", name=fullname)
        return None


def _without_pandas() -> None:
    """Make ``import pandas`` fail in this process, so that pyarrow treats pandas as absent.

    NOTE: pyarrow imports pandas (when installed) the first time it converts a column to or
    from numpy, only to ask whether the object is a pandas one; in a worker that import was
    the largest part of its start-up (py-spy: 59% of the workers' import time, more than
    pyarrow and onnxruntime together). A worker never handles pandas objects. pyarrow's
    import of pandas catches ImportError (a ``None`` in ``sys.modules`` does not work: its
    compiled import hands back the None).
    """
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())


def _worker(
    folder: str, description: JobDescription, index: int, plans: Any, results: Any, cancel: Any
) -> None:
    """Build the session, take a plan, score its chunks; report shards, then ``done``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    options = description.options
    _without_pandas()
    # NOTE: imported here: the job process never scores, so it never loads onnxruntime.
    from control_plane.batch.scoring import ChunkScorer

    try:
        scorer = ChunkScorer(
            Path(description.onnx_path).read_bytes(),
            model=description.model,
            version=description.version,
            keep_columns=options.id_columns + options.carry_columns,
            bad_rows=options.bad_rows,
            threads=_threads(options.workers),
        )
        plan = _next_plan(plans, parent)
        if plan is None:
            return
        files, block = plan
        columns = list(
            dict.fromkeys(scorer.info.feature_names + options.id_columns + options.carry_columns)
        )
        for key, table in read_block(files, block, options.chunk_size, columns):
            if cancel.is_set() or os.getppid() != parent:
                results.put(("done", index))
                return
            scored = scorer.score(table, where=f"{files[key[0]].name} chunk {key[1]}")
            results.put(("shard", _write(Path(folder), key, scored, options.output_format)))
    except ModelyardError as error:
        results.put(("failed", str(error)))
        return
    except Exception as error:  # NOTE: a full disk (OSError), a reader's error: the job fails
        # with the cause (a dying worker's traceback went to the job's null stderr before, and
        # the job ended only later, as "a worker process died")
        results.put(("failed", f"worker {index}: {type(error).__name__}: {error}"))
        return
    results.put(("done", index))


def _write(folder: Path, key: ChunkKey, scored: Any, fmt: Any) -> WrittenShard:
    tmp, sha = write_aside(folder, scored.results, fmt)
    errors_tmp = errors_sha = None
    error_rows = 0
    if scored.errors is not None:
        errors_tmp, errors_sha = write_aside(folder, scored.errors, fmt)
        error_rows = scored.errors.num_rows
    return WrittenShard(
        file=key[0],
        chunk=key[1],
        tmp=tmp,
        rows=scored.results.num_rows,
        sha256=sha,
        errors_tmp=errors_tmp,
        error_rows=error_rows,
        errors_sha256=errors_sha,
    )


class WorkerPool:
    """``description.options.workers`` worker processes, started at construction.

    Args:
        folder: the job's output folder (shards are written aside there).
        description: the job.
    """

    def __init__(self, folder: Path, description: JobDescription) -> None:
        context = mp.get_context("spawn")
        workers = description.options.workers
        self.results: Any = context.Queue(maxsize=2 * workers)
        self.plans: Any = context.Queue()
        # NOTE: a plan no worker took (it died) must not keep this process from exiting.
        self.plans.cancel_join_thread()
        self.cancel = context.Event()
        self.processes = [
            context.Process(
                target=_worker,
                args=(str(folder), description, i, self.plans, self.results, self.cancel),
                daemon=True,
            )
            for i in range(workers)
        ]
        for process in self.processes:
            process.start()

    def run(self, files: list[InputFile], blocks: list[list[ChunkKey]],
            commit: Callable[[WrittenShard], None]) -> str | None:  # fmt: skip
        """Give each worker one block, ``commit`` every shard they report, wait for them all;
        return the first error a worker reported (None when every worker finished)."""
        for block in blocks:
            self.plans.put((files, block))
        try:
            return self._collect(commit)
        finally:
            for process in self.processes:
                process.join()

    def stop(self) -> None:
        """End the workers before they were given work (the job failed before scoring)."""
        for _ in self.processes:
            self.plans.put(None)
        for process in self.processes:
            process.join()

    def _collect(self, commit: Callable[[WrittenShard], None]) -> str | None:
        running, error = len(self.processes), None
        while running:
            try:
                kind, value = self.results.get(timeout=_POLL_S)
            except queue.Empty:
                if not any(p.is_alive() for p in self.processes):
                    return error or "a worker process died"
                continue
            if kind == "shard":
                commit(value)
            elif kind == "failed":
                error = error or value
                self.cancel.set()
            else:
                running -= 1
        return error


__all__ = ["WorkerPool", "read_block"]
