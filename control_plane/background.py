"""The loop of the control plane's periodic background tasks (scheduler, notifier, unpacker),
and the retry of a background task's one write that must not be lost (:func:`write_until_done`).

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
import time
from collections.abc import Awaitable, Callable

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 5.0


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


async def write_until_done(
    write: Callable[[], Awaitable[object]],
    *,
    what: str,
    logger: logging.Logger,
    give_up: Callable[[], bool] = lambda: False,
    within_s: float = float("inf"),
) -> bool:
    """Run ``write`` until it succeeds, backing off (0.1 s doubling to 5 s) after each failure,
    which is logged as a warning naming ``what``; stop retrying when ``give_up()`` is true or
    the next try would start after ``within_s`` seconds (logged as an error). For the write a
    background task's outcome rests on (how a run or job ended): a database hiccup must not
    lose it. Whether it was written.

    >>> attempts = []
    >>> async def flaky() -> None:
    ...     attempts.append(1)
    ...     if len(attempts) < 3:
    ...         raise OSError("database unreachable")
    >>> asyncio.run(write_until_done(flaky, what="demo", logger=logging.getLogger("demo")))
    True
    >>> len(attempts)
    3
    """
    delay, deadline = RETRY_FIRST_S, time.monotonic() + within_s
    while True:
        try:
            await write()
            return True
        except Exception as exc:  # NOTE: the edge of a background task: log and retry
            if give_up() or time.monotonic() + delay > deadline:
                logger.error("%s: not written, given up (%r)", what, exc)
                return False
            logger.warning("%s: not written yet (%r); retried in %gs", what, exc, delay)
        await asyncio.sleep(delay)  # a backoff, not a wait for an event
        delay = min(delay * 2, RETRY_MAX_S)


__all__ = ["RETRY_FIRST_S", "RETRY_MAX_S", "run_every", "write_until_done"]
