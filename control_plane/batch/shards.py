"""The output of a job: shards written aside and renamed into place, and their manifest.

Layout of an output folder::

    job.json                         fingerprint and description of the job (resume checks it)
    manifest.json                    one entry per committed shard: rows, errors, sha256
    part-<file>-<chunk>.parquet      the results of chunk <chunk> of input file <file>
    errors-<file>-<chunk>.parquet    its rows the model could not score, with the reason
    .tmp-*                           shards being written (never read; removed on resume)

A worker writes a shard under a ``.tmp-`` name and fsyncs it; the job process renames it into
place, then rewrites ``manifest.json`` (aside, fsync, rename). A shard is *committed* once its
entry is in the manifest. A crash between the rename and the manifest leaves a shard file
without an entry: resume scores that chunk again and the rename replaces the file, so the
committed output holds every chunk exactly once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from control_plane.batch.models import BatchOptions, OutputFormat
from modelyard.errors import FailedPrecondition

MANIFEST = "manifest.json"
JOB_FILE = "job.json"


class ShardEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One committed shard.

    Attributes:
        file: index of the input file.
        chunk: index of the chunk in that file.
        path: the shard's file name.
        rows: result rows in it.
        sha256: SHA-256 of its bytes.
        errors_path: the errors file of the chunk, if any row failed.
        error_rows: rows in the errors file.
        errors_sha256: SHA-256 of the errors file.
    """

    file: int
    chunk: int
    path: str
    rows: int
    sha256: str
    errors_path: str | None = None
    error_rows: int = 0
    errors_sha256: str | None = None


class Manifest(msgspec.Struct, kw_only=True):
    """What a job committed so far.

    Attributes:
        fingerprint: the job's fingerprint.
        rows_total: rows of the whole input.
        shards: the committed shards, in commit order.
        complete: every chunk is committed.
    """

    fingerprint: str
    rows_total: int = 0
    shards: list[ShardEntry] = msgspec.field(default_factory=list)
    complete: bool = False


class JobDescription(msgspec.Struct, kw_only=True, frozen=True):
    """``job.json``: what resume compares and what a reader of the folder needs."""

    job_id: str
    fingerprint: str
    model: str
    version: int
    onnx_path: str
    onnx_sha256: str
    input: str
    options: BatchOptions
    parts: dict[str, str] = msgspec.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class WrittenShard:
    """A shard written aside by a worker, not yet committed."""

    file: int
    chunk: int
    tmp: str
    rows: int
    sha256: str
    errors_tmp: str | None
    error_rows: int
    errors_sha256: str | None


def shard_name(prefix: str, file: int, chunk: int, fmt: OutputFormat) -> str:
    """The committed name of a shard (``part-00000-000003.parquet``)."""
    return f"{prefix}-{file:05d}-{chunk:06d}.{fmt.value}"


def _fsync_write(path: Path, content: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_aside(folder: Path, table: pa.Table, fmt: OutputFormat) -> tuple[str, str]:
    """Write ``table`` under a ``.tmp-`` name in ``folder``; return (name, sha256)."""
    name = f".tmp-{secrets.token_hex(8)}.{fmt.value}"
    path = folder / name
    if fmt is OutputFormat.CSV:
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
    return name, sha256_of(path)


class ShardLedger:
    """The job process's view of the output folder: commits shards, keeps the manifest.

    Args:
        folder: the output folder.
        fmt: the shards' format.
        manifest: the manifest to extend (a new one, or the one read back on resume).
    """

    def __init__(self, folder: Path, fmt: OutputFormat, manifest: Manifest) -> None:
        self.folder = folder
        self.fmt = fmt
        self.manifest = manifest
        self.done = {(s.file, s.chunk) for s in manifest.shards}

    def commit(self, shard: WrittenShard) -> ShardEntry:
        """Rename a written shard (and its errors file) into place and record it."""
        path = shard_name("part", shard.file, shard.chunk, self.fmt)
        os.replace(self.folder / shard.tmp, self.folder / path)
        errors_path = None
        if shard.errors_tmp is not None:
            errors_path = shard_name("errors", shard.file, shard.chunk, self.fmt)
            os.replace(self.folder / shard.errors_tmp, self.folder / errors_path)
        entry = ShardEntry(
            file=shard.file,
            chunk=shard.chunk,
            path=path,
            rows=shard.rows,
            sha256=shard.sha256,
            errors_path=errors_path,
            error_rows=shard.error_rows,
            errors_sha256=shard.errors_sha256,
        )
        if (shard.file, shard.chunk) not in self.done:
            self.manifest.shards.append(entry)
            self.done.add((shard.file, shard.chunk))
        self.save()
        return entry

    def save(self) -> None:
        """Rewrite the manifest atomically."""
        save_json(self.folder / MANIFEST, self.manifest)


def save_json(path: Path, value: object) -> None:
    """Write ``value`` as JSON aside, fsync, rename into place."""
    tmp = path.parent / f".tmp-{path.name}-{secrets.token_hex(4)}"
    _fsync_write(tmp, msgspec.json.encode(value))
    os.replace(tmp, path)


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None when there is none.

    Raises:
        FailedPrecondition: the manifest is not readable.
    """
    try:
        return msgspec.json.decode((folder / MANIFEST).read_bytes(), type=Manifest)
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise FailedPrecondition(f"manifest of {folder} is damaged: {error}") from None


def read_description(folder: Path) -> JobDescription | None:
    """The folder's ``job.json``, or None when there is none."""
    try:
        return msgspec.json.decode((folder / JOB_FILE).read_bytes(), type=JobDescription)
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise FailedPrecondition(f"{folder / JOB_FILE} is damaged: {error}") from None


def remove_uncommitted(folder: Path) -> int:
    """Delete ``.tmp-`` files left by a crash; return how many."""
    removed = 0
    for path in folder.glob(".tmp-*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def read_results(folder: Path) -> pa.Table:
    """Every committed result row of the folder (for tests and small outputs).

    Raises:
        FailedPrecondition: no manifest, or a shard's checksum does not match its entry.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        raise FailedPrecondition(f"{folder} has no manifest")
    tables = []
    for entry in sorted(manifest.shards, key=lambda s: (s.file, s.chunk)):
        path = folder / entry.path
        if sha256_of(path) != entry.sha256:
            raise FailedPrecondition(f"shard {entry.path} does not match its checksum")
        is_csv = path.suffix == ".csv"
        tables.append(pacsv.read_csv(path) if is_csv else pq.read_table(path))
    return pa.concat_tables(tables) if tables else pa.table({})


__all__ = [
    "JOB_FILE",
    "MANIFEST",
    "JobDescription",
    "Manifest",
    "ShardEntry",
    "ShardLedger",
    "WrittenShard",
    "read_description",
    "read_manifest",
    "read_results",
    "remove_uncommitted",
    "save_json",
    "sha256_of",
    "shard_name",
    "write_aside",
]
