"""The fingerprint of a job: what decides its output, hashed.

Model name, version and artifact hash; the input files' names, sizes and modification times;
and the options that shape shards and columns (chunk size, id and carry columns, output format,
bad-row policy). Worker count is not part of it: it changes speed, not output.

>>> from control_plane.batch.models import BatchOptions
>>> a = job_fingerprint("m", 1, "ab", [], BatchOptions(workers=1))
>>> a == job_fingerprint("m", 1, "ab", [], BatchOptions(workers=4))
True
>>> a == job_fingerprint("m", 1, "ab", [], BatchOptions(chunk_size=10))
False
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from control_plane.batch.models import BatchOptions
from control_plane.batch.sources import InputFile, input_identity


def fingerprint_parts(
    model: str, version: int, onnx_sha256: str, files: Sequence[InputFile], options: BatchOptions
) -> dict[str, str]:
    """The parts of the fingerprint, by name (resume names the ones that differ)."""
    return {
        "model": f"{model}/{version}/{onnx_sha256}",
        "input": input_identity(files),
        "options": msgspec.json.encode(msgspec.structs.replace(options, workers=1)).decode(),
    }


def job_fingerprint(
    model: str, version: int, onnx_sha256: str, files: Sequence[InputFile], options: BatchOptions
) -> str:
    """The hash of :func:`fingerprint_parts`."""
    parts = fingerprint_parts(model, version, onnx_sha256, files, options)
    return hashlib.sha256(msgspec.json.encode(parts)).hexdigest()


__all__ = ["fingerprint_parts", "job_fingerprint"]
