"""Holding a version's first session run, so that what batches is decided by the test, not by
how fast the machine runs (a run that ends before the next request arrives batches nothing).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tests.waiting import until

if TYPE_CHECKING:
    import numpy as np

    from inference_server.batcher import MicroBatcher


class HeldRun:
    """Wraps ``batcher``'s session run: the first run waits until released (see
    :meth:`release_when_queued`). No run goes inline on the event loop meanwhile (that would
    bypass the hold). Used as a context manager, it puts the batcher back as it was on exit.

    ``rows``: the held run's rows; ``queued``: requests queued behind it.
    """

    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher
        self._run = batcher._run
        self._inline_rows = batcher._inline_rows
        self._held = asyncio.Event()
        self._released = asyncio.Event()
        self.rows = 0
        batcher._run = self._held_run
        batcher._inline_rows = 0

    def __enter__(self) -> HeldRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self._batcher._run = self._run
        self._batcher._inline_rows = self._inline_rows

    async def _held_run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if not self._released.is_set():
            self.rows = len(arrays[0])
            self._held.set()
            await self._released.wait()
        return await self._run(arrays)

    @property
    def queued(self) -> int:
        return len(self._batcher._queue)

    async def release_when_queued(self, requests: int) -> None:
        """Once a run is held with ``requests`` queued behind it, let it go (30 s bound)."""
        await until(
            lambda: self._held.is_set() and self.queued >= requests,
            f"a held run with {requests} requests queued behind it",
            every_s=0.001,
        )
        self._released.set()
