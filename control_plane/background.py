"""The loop of the control plane's periodic background tasks (scheduler, notifier, unpacker).

One pass, then a wait of the task's interval that a wake-up cuts short; the wake event is
cleared *before* each pass, so a wake-up that arrives during a pass is not lost. A pass that
raises is logged and the loop goes on (the edge of a background task: one failure must not
stop the task for the life of the process); cancelling the task stops it at once.

>>> async def demo() -> int:
...     passes = []
...     async def step() -> None:
...         passes.append(1)
...     wake = asyncio.Event()
...     stop = lambda: len(passes) >= 2
...     await run_every(step, interval_s=0.001, wake=wake, stopping=stop,
...                     failure="demo pass failed", logger=logging.getLogger("demo"))
...     return len(passes)
>>> asyncio.run(demo())
2
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


async def run_every(
    step: Callable[[], Awaitable[object]],
    *,
    interval_s: float,
    wake: asyncio.Event,
    stopping: Callable[[], bool],
    failure: str,
    logger: logging.Logger,
) -> None:
    """Run ``step`` until ``stopping()`` is true, waiting ``interval_s`` (or until ``wake`` is
    set) between passes; a pass that raises is logged with ``failure`` as the message."""
    while not stopping():
        # NOTE: cleared before the pass, so a wake-up during it is not lost.
        wake.clear()
        try:
            await step()
        except Exception:  # NOTE: the edge of a background task: log and keep going.
            logger.exception(failure)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=interval_s)


__all__ = ["run_every"]
