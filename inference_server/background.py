"""What a serving worker's background threads do so that requests go first.

A worker answers on one event loop; beside it run the prediction log's spooler and shipper
(:mod:`~inference_server.prediction_log.writer`) and the drift sketches' fold
(:mod:`~inference_server.drift.book`). On a server with one core per worker they share that
core and the GIL with the loop, and a request that arrives while one of them runs waits: for
the core (the kernel's scheduler) and for the GIL (held by pure-Python work and by numpy on
small arrays until the thread lets go, at the latest after the 5 ms switch interval). At the
harness's fixed arrival rates each pass of these threads cost the GIL 0.5-0.8 ms (mostly
per-pass and per-run fixed costs, not per-request work), often enough that more than 1 % of
the requests waited behind one: p99 about 2x with the log and the sketches on.

Two rules, both measured in ``benchmarks/latency_cost.py``:

* **Lower CPU priority** (:func:`demote_current_thread`): each background thread raises its
  own nice value (Linux keeps one per thread) to ``server.background_nice``. When the loop
  wakes up for a request while a background thread runs outside the GIL (a ``writev``, an
  SQLite step, a commit), the scheduler runs the loop first; the background work still gets
  the core whenever the loop waits (idle, or blocked on the GIL that thread holds), so it is
  delayed, never starved.
* **Short GIL slices** (:class:`Slicer`): a background pass that has held the GIL for
  ``SLICE_S`` lets go of it and of the core (``os.sched_yield``) at its next safe point, so a
  request waits behind at most one slice, not a whole pass. Below a slice (the usual pass at
  moderate load) nothing is yielded; a yield with nobody waiting costs ~1 µs.

Setting the switch interval (``sys.setswitchinterval``) instead was tried and rejected: at
0.2 ms it gave the loop the GIL sooner but, with the background threads demoted, made p99 at
8,000 req/s jump to 10-78 ms in two rounds of four (forced switches in both directions).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

SLICE_S = 0.0002
"""Longest stretch a background pass holds the GIL before it yields (0.2 ms)."""


def demote_current_thread(nice: int) -> None:
    """Raise the calling thread's nice value to ``nice`` (0: leave it; never lowered).

    Linux gives every thread its own nice value (``setpriority`` on the thread id); elsewhere
    the call would demote the whole process, so it does nothing there.
    """
    if nice <= 0 or os.uname().sysname != "Linux":
        return
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if nice > current:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:  # NOTE: a sandbox may refuse; the thread then runs as it is
        name = threading.current_thread().name
        log.warning("background thread %s kept its priority: %s", name, exc)


class Slicer:
    """Yields the GIL and the core once the calling thread has held them ``slice_s``.

    Call :meth:`tick` at the safe points of a long pass (between runs, between chunks) and
    :meth:`restart` when a pass begins.

    >>> clock = iter([0.0, 0.0001, 0.0003, 0.0003]).__next__
    >>> slicer = Slicer(0.0002, clock=clock)
    >>> slicer.restart(); slicer.tick(), slicer.tick()
    (False, True)
    """

    def __init__(
        self, slice_s: float = SLICE_S, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._slice = slice_s
        self._clock = clock
        self._start = 0.0

    def restart(self) -> None:
        """A pass begins: the slice starts now."""
        self._start = self._clock()

    def tick(self) -> bool:
        """Yield (and start a new slice) if the slice is used up; whether it yielded."""
        if self._clock() - self._start < self._slice:
            return False
        os.sched_yield()  # NOTE: releases the GIL; a waiting event loop takes it
        self._start = self._clock()
        return True
