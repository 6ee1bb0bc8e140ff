"""A real write failure for tests: the kernel's file size limit."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Within the block, a write at or past byte ``limit`` of any file fails with EFBIG (a
    write across it writes what fits first), in this process and the ones it starts: the
    ``RLIMIT_FSIZE`` soft limit, with SIGXFSZ ignored (which would kill the writer), as a
    filling disk fails with ENOSPC."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
