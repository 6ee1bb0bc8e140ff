"""Content-addressed ONNX artifacts in a folder: ``<root>/sha256/<aa>/<sha256>.onnx``.

The address is the SHA-256 of the bytes, so storing the same model twice writes one file, and a
file is never changed once written. A file is written aside and renamed into place, so a reader
never sees a partial artifact.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from modelyard.errors import InvalidArgument, NotFound

_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


class ArtifactStore:
    """A folder of immutable, content-addressed files.

    Args:
        root: the folder (created on first write).
    """

    def __init__(self, root: Path) -> None:
        # Absolute, so artifact paths stay valid as file URIs (the MLflow mirror records them)
        # whatever the working directory of a later reader.
        self.root = root.resolve()

    def path(self, sha256: str) -> Path:
        """Where the artifact with this hash lives.

        Raises:
            InvalidArgument: ``sha256`` is not 64 lowercase hex digits.
        """
        if not _SHA256.match(sha256):
            raise InvalidArgument(f"invalid artifact hash {sha256!r}")
        return self.root / "sha256" / sha256[:2] / f"{sha256}.onnx"

    def put(self, content: bytes) -> str:
        """Store ``content`` (idempotent) and return its SHA-256."""
        digest = hashlib.sha256(content).hexdigest()
        target = self.path(digest)
        if target.is_file() and target.stat().st_size == len(content):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{digest}.tmp-{secrets.token_hex(4)}"
        with tmp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return digest

    def get(self, sha256: str) -> bytes:
        """The artifact's bytes, checked against its address.

        Raises:
            NotFound: no artifact has this hash (or the file no longer matches it).
        """
        try:
            content = self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound("artifact", sha256) from None
        if hashlib.sha256(content).hexdigest() != sha256:
            raise NotFound("artifact", sha256)
        return content
