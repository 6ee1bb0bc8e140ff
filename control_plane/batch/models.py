"""Shapes of batch prediction jobs: the request, its options, the job and its progress.

Input shapes forbid unknown fields. The *fingerprint* of a job covers what decides its output
(model version and artifact, input files, the options that shape shards and columns); the
number of worker processes is left out on purpose: it changes speed, not the output, so a
job may resume with more or fewer processes.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import msgspec

from modelyard.enums import ModelStage
from modelyard.models import InputValue, Name, VersionNumber

MAX_CHUNK = 1_000_000


class JobState(enum.Enum):
    """Where a job is: pending -> running -> succeeded | failed | cancelled."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class BadRowPolicy(enum.Enum):
    """What a row the model cannot score does: fail the job, or go to an errors file."""

    FAIL = "fail"
    ERRORS_FILE = "errors_file"


class OutputFormat(enum.Enum):
    """How shards are written."""

    PARQUET = "parquet"
    CSV = "csv"


class BatchOptions(InputValue, kw_only=True, frozen=True):
    """How a job reads, scores and writes.

    Attributes:
        chunk_size: rows per chunk; one chunk is one output shard.
        workers: worker processes, each with one onnxruntime session.
        id_columns: input columns copied to the output to identify rows.
        carry_columns: further input columns copied through unchanged.
        output_format: ``parquet`` (default) or ``csv``.
        bad_rows: ``fail`` the job, or write such rows to ``errors-*`` files with the reason.
        dask_scheduler: a Dask scheduler address: score partitions on that cluster instead
            of local worker processes (the output folder must be shared storage).
    """

    chunk_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHUNK)] = 65_536
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    id_columns: tuple[str, ...] = ()
    carry_columns: tuple[str, ...] = ()
    output_format: OutputFormat = OutputFormat.PARQUET
    bad_rows: BadRowPolicy = BadRowPolicy.FAIL
    dask_scheduler: str | None = None


class BatchRequest(InputValue, kw_only=True, frozen=True):
    """Body of ``POST /v1/batch/jobs``: score ``input`` with a model version into ``output``.

    Attributes:
        model: registered model name.
        version: exact version; or ``stage`` (its latest version in that stage).
        stage: ``Staging`` or ``Production`` (or any stage) when ``version`` is omitted.
        input: a CSV/Parquet file or a folder of them, under the batch data root.
        output: the output folder, under the batch data root (must be new or empty).
        options: chunking, workers, columns, policies.
    """

    model: Name
    version: VersionNumber | None = None
    stage: ModelStage | None = None
    input: str
    output: str
    options: BatchOptions = BatchOptions()


class Progress(msgspec.Struct, kw_only=True, frozen=True):
    """How far a job got: rows done of total, speed and ETA of the current run.

    Attributes:
        state: the job's state.
        rows_total: rows of the input (0 until counted).
        rows_done: rows in committed shards (scored or written to an errors file).
        rows_failed: of those, rows in errors files.
        shards_done: committed shards.
        rows_per_s: rows per second of the current run (committed rows / elapsed).
        eta_s: seconds to finish at that speed, or None.
        error: why the job failed.
    """

    state: JobState
    rows_total: int = 0
    rows_done: int = 0
    rows_failed: int = 0
    shards_done: int = 0
    rows_per_s: float = 0.0
    eta_s: float | None = None
    error: str | None = None


class BatchJob(msgspec.Struct, kw_only=True, frozen=True):
    """One batch prediction job.

    Attributes:
        id: job id.
        model: model name.
        version: the resolved version.
        input: input path as given (relative to the data root).
        output: output path as given.
        options: the options.
        fingerprint: hash of what decides the output (resume must match it).
        progress: the latest progress.
        created_at: submission time (UTC).
        updated_at: last change (UTC).
        created_by: who submitted it.
    """

    id: str
    model: str
    version: int
    input: str
    output: str
    options: BatchOptions
    fingerprint: str
    progress: Progress
    created_at: dt.datetime
    updated_at: dt.datetime
    created_by: str


__all__ = [
    "FINAL_STATES",
    "BadRowPolicy",
    "BatchJob",
    "BatchOptions",
    "BatchRequest",
    "JobState",
    "OutputFormat",
    "Progress",
]
