"""The job process: worker processes score chunks, this process commits shards and progress.

``python -m control_plane.batch.runner OUTPUT`` runs (or resumes) the job described by
``OUTPUT/job.json``. It starts the ``options.workers`` worker processes first
(:class:`~control_plane.batch.workers.WorkerPool`: their start-up overlaps what follows),
then checks the fingerprint, removes uncommitted shards and counts the input rows, and gives
each worker one contiguous block of the pending chunks
(:func:`~control_plane.batch.partition.assign`, balanced by rows); a worker reads only its
chunks (for Parquet only the row groups under them). Only this process renames shards into
place and writes the manifest and ``progress.json``, so there is one writer. SIGTERM (and
``cancel``) stops at a shard boundary: workers finish the chunk in hand, it is committed, and
the job ends ``cancelled``. With ``options.dask_scheduler`` no local worker is started and
:mod:`control_plane.batch.cluster` scores the partitions.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import msgspec

from control_plane.batch.fingerprint import job_fingerprint
from control_plane.batch.models import JobState, Progress
from control_plane.batch.partition import assign, chunk_count, pending_chunks
from control_plane.batch.shards import (
    JobDescription,
    Manifest,
    ShardLedger,
    WrittenShard,
    read_description,
    read_manifest,
    remove_uncommitted,
    save_json,
)
from control_plane.batch.sources import InputFile, count_rows, list_inputs
from control_plane.batch.workers import WorkerPool
from modelyard.errors import ModelyardError

PROGRESS = "progress.json"


def fingerprint_of(description: JobDescription, files: list[InputFile]) -> str:
    """The fingerprint: model version and artifact + input identity + output-shaping options."""
    return job_fingerprint(
        description.model,
        description.version,
        description.onnx_sha256,
        files,
        description.options,
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
        options = self.description.options
        pool = None if options.dask_scheduler else WorkerPool(self.folder, self.description)
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda *_: self._request_cancel(pool))
        try:
            try:
                files, row_counts, ledger = self._prepare()
            except ModelyardError as error:
                if pool is not None:
                    pool.stop()
                self.write_progress(None, JobState.FAILED, str(error))
                return JobState.FAILED
            if pool is None:
                return self._score_on_dask(ledger)
            return self._score(pool, files, row_counts, ledger)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _prepare(self) -> tuple[list[InputFile], list[int], ShardLedger]:
        """Check the fingerprint, clear uncommitted shards, count rows; the ledger to extend.

        Raises:
            ModelyardError: the input changed or cannot be read, or the manifest is damaged.
        """
        files = list_inputs(Path(self.description.input))
        if fingerprint_of(self.description, files) != self.description.fingerprint:
            raise ModelyardError("the input changed since the job was submitted")
        manifest = read_manifest(self.folder) or Manifest(fingerprint=self.description.fingerprint)
        remove_uncommitted(self.folder)
        row_counts = [count_rows(f) for f in files]
        manifest.rows_total = sum(row_counts)
        ledger = ShardLedger(self.folder, self.description.options.output_format, manifest)
        self.rows_at_start = sum(s.rows + s.error_rows for s in manifest.shards)
        ledger.save()
        return files, row_counts, ledger

    def _score_on_dask(self, ledger: ShardLedger) -> JobState:
        from control_plane.batch.cluster import run_on_dask
        from control_plane.batch.scoring import ChunkScorer

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
        manifest = ledger.manifest
        scored = sum(shard.rows + shard.error_rows for shard in manifest.shards)
        # NOTE: every partition committed is not enough: a folder mixing CSV and Parquet was
        # read as its CSV files only and reported complete with rows missing
        every_partition = len(ledger.done) >= partitions
        manifest.complete = every_partition and scored == manifest.rows_total
        ledger.save()
        if manifest.complete:
            self.write_progress(ledger, JobState.SUCCEEDED)
            return JobState.SUCCEEDED
        missing = f"the cluster scored {scored} of {manifest.rows_total} rows"
        self.write_progress(ledger, JobState.FAILED, missing if every_partition else None)
        return JobState.FAILED

    def _score(
        self, pool: WorkerPool, files: list[InputFile], row_counts: list[int], ledger: ShardLedger
    ) -> JobState:
        options = self.description.options
        if self.cancel_requested:  # SIGTERM arrived while the input was being counted
            pool.cancel.set()
        blocks = assign(
            pending_chunks(row_counts, options.chunk_size, ledger.done), options.workers
        )

        def commit(shard: WrittenShard) -> None:
            ledger.commit(shard)
            self.write_progress(ledger, JobState.RUNNING)

        error = pool.run(files, blocks, commit)
        expected = sum(chunk_count(rows, options.chunk_size) for rows in row_counts)
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

    def _request_cancel(self, pool: WorkerPool | None = None) -> None:
        self.cancel_requested = True
        if pool is not None:
            pool.cancel.set()


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
