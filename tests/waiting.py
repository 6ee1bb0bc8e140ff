"""Waiting for a condition in a test: polled, bounded, named (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

LIMIT_S = 30.0
"""How long a condition may take before the test fails: a guard against hangs, not a timing."""


async def until(
    condition: Callable[[], bool | Awaitable[bool]],
    what: str,
    limit_s: float = LIMIT_S,
    every_s: float = 0.01,
) -> None:
    """Return once ``condition()`` (sync or async) holds; fail naming ``what`` after ``limit_s``.

    >>> asyncio.run(until(lambda: True, "nothing"))
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert loop.time() < deadline, f"timed out after {limit_s:g} s waiting for {what}"
        await asyncio.sleep(every_s)
