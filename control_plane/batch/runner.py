"""The job process: worker processes score chunks, this process commits shards and progress.

``python -m control_plane.batch.runner OUTPUT`` runs (or resumes) the job described by
``OUTPUT/job.json``. It counts the input rows, removes uncommitted shards, and starts
``options.workers`` worker processes; worker ``w`` scores the pending chunks whose ordinal
is ``w`` modulo the worker count, each with one onnxruntime session of
``cores // workers`` threads (so the processes never oversubscribe the cores), and hands back
shards written aside. Only this process renames shards into place and writes the manifest
and ``progress.json``, so there is one writer. SIGTERM (and ``cancel``) stops at a shard
boundary: workers finish the chunk in hand, it is committed, and the job ends ``cancelled``.
A bounded queue (two shards per worker) keeps memory flat when commits lag.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import msgspec

from control_plane.batch.fingerprint import job_fingerprint
from control_plane.batch.models import JobState, Progress
from control_plane.batch.scoring import ChunkScorer
from control_plane.batch.shards import (
    JobDescription,
    Manifest,
    ShardLedger,
    WrittenShard,
    read_description,
    read_manifest,
    remove_uncommitted,
    save_json,
    write_aside,
)
from control_plane.batch.sources import InputFile, count_rows, list_inputs, read_chunks
from modelyard.errors import ModelyardError

PROGRESS = "progress.json"
_POLL_S = 0.2


def fingerprint_of(description: JobDescription, files: list[InputFile]) -> str:
    """The fingerprint: model version and artifact + input identity + output-shaping options."""
    return job_fingerprint(
        description.model,
        description.version,
        description.onnx_sha256,
        files,
        description.options,
    )


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _worker(
    folder: str,
    description: JobDescription,
    files: list[InputFile],
    done: set[tuple[int, int]],
    index: int,
    results: Any,
    cancel: Event,
) -> None:
    """Score this worker's pending chunks; report each shard, then ``("done", index)``."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the job process decides when to stop
    parent = os.getppid()
    options = description.options
    try:
        scorer = ChunkScorer(
            Path(description.onnx_path).read_bytes(),
            model=description.model,
            version=description.version,
            keep_columns=options.id_columns + options.carry_columns,
            bad_rows=options.bad_rows,
            threads=_threads(options.workers),
        )
        columns = list(
            dict.fromkeys(scorer.info.feature_names + options.id_columns + options.carry_columns)
        )
        ordinal = 0
        for file_index, file in enumerate(files):
            for chunk, table in _own_chunks(
                file, options.chunk_size, columns, index, options.workers, ordinal
            ):
                key = (file_index, chunk)
                if key in done:
                    continue
                # A worker orphaned by a killed job process stops (its shards were never
                # committed; resume removes them).
                if cancel.is_set() or os.getppid() != parent:
                    results.put(("done", index))
                    return
                scored = scorer.score(table, where=f"{file.name} chunk {chunk}")
                results.put(("shard", _write(Path(folder), key, scored, options.output_format)))
            ordinal += _chunks_of(file, options.chunk_size)
    except ModelyardError as error:
        results.put(("failed", str(error)))
        return
    results.put(("done", index))


def _chunks_of(file: InputFile, chunk_size: int) -> int:
    return -(-count_rows(file) // chunk_size)


def _own_chunks(
    file: InputFile, chunk_size: int, columns: list[str], index: int, workers: int, ordinal: int
) -> Any:
    for chunk, table in read_chunks(file, chunk_size, columns):
        if (ordinal + chunk) % workers == index:
            yield chunk, table


def _write(folder: Path, key: tuple[int, int], scored: Any, fmt: Any) -> WrittenShard:
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


class JobRun:
    """One run (first or resumed) of the job in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        description = read_description(folder)
        if description is None:
            raise ModelyardError(f"{folder} holds no job.json")
        self.description = description
        self.started = time.monotonic()
        self.rows_at_start = 0
        self.cancel_requested = False

    def write_progress(
        self, ledger: ShardLedger | None, state: JobState, error: str | None = None
    ) -> None:
        """Write ``progress.json`` from the manifest and this run's speed."""
        manifest = ledger.manifest if ledger else Manifest(fingerprint=self.description.fingerprint)
        done = sum(s.rows + s.error_rows for s in manifest.shards)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (done - self.rows_at_start) / elapsed
        remaining = max(manifest.rows_total - done, 0)
        progress = Progress(
            state=state,
            rows_total=manifest.rows_total,
            rows_done=done,
            rows_failed=sum(s.error_rows for s in manifest.shards),
            shards_done=len(manifest.shards),
            rows_per_s=round(rate, 1),
            eta_s=round(remaining / rate, 1) if rate > 0 else None,
            error=error,
        )
        save_json(self.folder / PROGRESS, progress)

    def run(self) -> JobState:
        """Run the job to its end; return the final state."""
        self.write_progress(None, JobState.RUNNING)
        try:
            files = list_inputs(Path(self.description.input))
            if fingerprint_of(self.description, files) != self.description.fingerprint:
                raise ModelyardError("the input changed since the job was submitted")
            manifest = read_manifest(self.folder) or Manifest(
                fingerprint=self.description.fingerprint
            )
            remove_uncommitted(self.folder)
            manifest.rows_total = sum(count_rows(f) for f in files)
            ledger = ShardLedger(self.folder, self.description.options.output_format, manifest)
            self.rows_at_start = sum(s.rows + s.error_rows for s in manifest.shards)
            ledger.save()
        except ModelyardError as error:
            self.write_progress(None, JobState.FAILED, str(error))
            return JobState.FAILED
        if self.description.options.dask_scheduler:
            return self._score_on_dask(ledger)
        return self._score(files, ledger)

    def _score_on_dask(self, ledger: ShardLedger) -> JobState:
        from control_plane.batch.cluster import run_on_dask

        options = self.description.options
        info = ChunkScorer(Path(self.description.onnx_path).read_bytes(), model="", version=0).info
        columns = list(
            dict.fromkeys(info.feature_names + options.id_columns + options.carry_columns)
        )
        try:
            partitions = run_on_dask(self.description, ledger, columns)
        except ModelyardError as error:
            self.write_progress(ledger, JobState.FAILED, str(error))
            return JobState.FAILED
        complete = len(ledger.done) >= partitions
        ledger.manifest.complete = complete
        ledger.save()
        state = JobState.SUCCEEDED if complete else JobState.FAILED
        self.write_progress(ledger, state)
        return state

    def _score(self, files: list[InputFile], ledger: ShardLedger) -> JobState:
        context = mp.get_context("spawn")
        workers = self.description.options.workers
        results = context.Queue(maxsize=2 * workers)
        cancel = context.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: self._request_cancel(cancel))
        if self.cancel_requested:  # SIGTERM arrived while the input was being counted
            cancel.set()
        processes = [
            context.Process(
                target=_worker,
                args=(
                    str(self.folder),
                    self.description,
                    files,
                    set(ledger.done),
                    i,
                    results,
                    cancel,
                ),
                daemon=True,
            )
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        try:
            error = self._collect(ledger, results, cancel, processes)
            for process in processes:
                process.join()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return self._finish(ledger, error)

    def _request_cancel(self, cancel: Event | None = None) -> None:
        self.cancel_requested = True
        if cancel is not None:
            cancel.set()

    def _collect(
        self, ledger: ShardLedger, results: Any, cancel: Event, processes: list[Any]
    ) -> str | None:
        running, error = len(processes), None
        while running:
            try:
                kind, value = results.get(timeout=_POLL_S)
            except queue.Empty:
                if not any(p.is_alive() for p in processes):
                    return error or "a worker process died"
                continue
            if kind == "shard":
                ledger.commit(value)
                self.write_progress(ledger, JobState.RUNNING)
            elif kind == "failed":
                error = error or value
                cancel.set()
            else:
                running -= 1
        return error

    def _finish(self, ledger: ShardLedger, error: str | None) -> JobState:
        expected = sum(
            -(-count_rows(f) // self.description.options.chunk_size)
            for f in list_inputs(Path(self.description.input))
        )
        if error is not None:
            state = JobState.FAILED
        elif len(ledger.done) >= expected:
            ledger.manifest.complete = True
            ledger.save()
            state = JobState.SUCCEEDED
        else:
            state = JobState.CANCELLED
        self.write_progress(ledger, state, error)
        return state


def read_progress(folder: Path) -> Progress | None:
    """The job's last ``progress.json``, or None before its first write."""
    try:
        return msgspec.json.decode((folder / PROGRESS).read_bytes(), type=Progress)
    except (FileNotFoundError, msgspec.DecodeError):
        return None


def main(argv: list[str]) -> int:
    """Entry point of the job process: ``runner OUTPUT``; exit 0 succeeded, 1 otherwise."""
    job = JobRun(Path(argv[0]))
    signal.signal(signal.SIGTERM, lambda *_: job._request_cancel())
    state = job.run()
    return 0 if state is JobState.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
