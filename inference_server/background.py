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

Two rules keep them out of the way, both measured in ``benchmarks/latency_cost.py``:

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

A third rule concerns what the batcher reads (:mod:`inference_server.saturation`): the CPU
time these threads take is **not serving load** (:class:`BackgroundCpu`). Every background
thread registers itself (:func:`demote_current_thread`), and the batcher's verdict that the
core is saturated is entered on the core's busy time less theirs. Their passes come in bursts
(a spooler pass every 50 ms, a fold every 0.1 s: 1-2 ms each over a few hundred one-request
runs), and on the 20 ms average the batcher reads, a burst on a core 0.85 busy crossed the 0.9
that makes the batcher linger -- which a load that needs no batching then paid in latency
(RESULTS.md, "Background passes are not load").

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
    """Raise the calling thread's nice value to ``nice`` (0: leave it; never lowered), and
    count its CPU time as background work (:data:`BACKGROUND_CPU`), whatever ``nice``.

    Linux gives every thread its own nice value (``setpriority`` on the thread id); elsewhere
    the call would demote the whole process, so it does nothing there.
    """
    BACKGROUND_CPU.register_current()
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


class BackgroundCpu:
    """CPU time, in ns, the registered background threads of this process have used so far.

    A thread registers itself (:meth:`register_current`); a read sums the threads' CPU clocks
    (``pthread_getcpuclockid``: one ``clock_gettime`` of about 0.2 µs each). A thread that
    ended keeps counting with the CPU time last read of it, so the sum never goes back (what
    it used after that read is not counted: these threads live as long as the worker).
    Threads register from their own thread and the event loop reads; each dict operation is
    atomic under the GIL, and a read works on a copy of the items.

    >>> import threading
    >>> cpu, registered, done = BackgroundCpu(), threading.Event(), threading.Event()
    >>> def work() -> None:
    ...     cpu.register_current()
    ...     sum(range(200_000))
    ...     registered.set()
    ...     done.wait()
    >>> thread = threading.Thread(target=work); thread.start(); _ = registered.wait()
    >>> used = cpu(); used > 0
    True
    >>> done.set(); thread.join()
    >>> cpu() >= used  # the ended thread's time stays counted
    True
    """

    def __init__(self) -> None:
        self._clocks: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self._ended = 0

    def register_current(self) -> None:
        """Count the calling thread's CPU time from now on (including what it used so far)."""
        if not hasattr(time, "pthread_getcpuclockid"):
            return  # NOTE: not on this platform; the signal then counts these threads too
        ident = threading.get_ident()
        self._ended += self._last.get(ident, 0)  # NOTE: an ended thread whose id came back
        self._last[ident] = 0
        self._clocks[ident] = time.pthread_getcpuclockid(ident)

    def __call__(self) -> int:
        total = self._ended
        for ident, clock in list(self._clocks.items()):
            try:
                used = time.clock_gettime_ns(clock)
            except OSError:  # NOTE: the thread ended: keep what it used, forget its clock
                last = self._last.pop(ident, 0)
                self._clocks.pop(ident, None)
                self._ended += last
                total += last
                continue
            self._last[ident] = used
            total += used
        return total


BACKGROUND_CPU = BackgroundCpu()
"""The worker's background threads (the log's spooler and shipper, the sketches' fold)."""


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
