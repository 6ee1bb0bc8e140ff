"""Name every Python thread in the kernel (``/proc/<pid>/task/<tid>/comm``), for
:mod:`benchmarks.thread_cpu`: CPython 3.11 leaves its threads named after the process, so the
kernel's per-thread counters cannot tell the spooler from the event loop. On this folder's
path (``PYTHONPATH``) Python imports it at start-up; each thread, as it starts, sets its
kernel name to the last 15 characters of its Python name (the kernel's limit). Benchmarks
only: the server itself never imports it.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

_PR_SET_NAME = 15
_libc = ctypes.CDLL(None)
_bootstrap: Any = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _named(self: threading.Thread) -> None:
    _libc.prctl(_PR_SET_NAME, self.name[-15:].encode(), 0, 0, 0)
    _bootstrap(self)


threading.Thread._bootstrap_inner = _named  # type: ignore[attr-defined]
