"""How a contender server started by the harness tells it which port it bound.

Servers bind port 0 and write ``{"grpc": p}`` or ``{"http": p}`` to a file the harness named;
the write is atomic (rename), so the harness never reads half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_ports(path: Path, **ports: int) -> None:
    """Atomically write the bound ports to ``path``."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports))
    os.replace(tmp, path)


def read_ports(path: Path) -> dict[str, int] | None:
    """Return the ports written to ``path``, or None while the file does not exist yet."""
    try:
        data: dict[str, int] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return data
