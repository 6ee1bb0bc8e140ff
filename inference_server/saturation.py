"""Whether the worker's core has idle time: the batcher's load signal (issue 21).

Waiting for more rows pays only when the core has no idle time: then the requests that arrive
meanwhile are admitted at no extra cost and one session run serves them all. When the core
has idle time, a wait is pure latency: the extra session runs would have fitted in the idle
time. Arrival gaps cannot tell the two apart (a saturated closed-loop server admits requests
only as fast as it answers them, so its gaps look sparse); the core's busy time can.

Design:
* The signal is the share of wall-clock time the worker's core was busy (:class:`BusyClock`).
  A worker pinned to one CPU (the recommended one worker per core) reads that CPU's idle
  residency from cpuidle, whoever kept it busy: on a shared core the time other processes
  take is not capacity the server could use. Elsewhere it counts the process's CPU time (all
  threads: the event loop, grpc's poller, the session threads) plus the time its event-loop
  thread waited on the run queue. One core is the ceiling: a worker is bound by its
  event-loop thread (the GIL), whatever cores its other threads may use.
* Less the CPU time of the worker's background threads (the prediction log's spooler and
  shipper, the sketches' fold: :data:`~inference_server.background.BACKGROUND_CPU`). Their
  work is deferred, not load, and it comes in bursts (a pass every 50-100 ms, 1-2 ms each at
  a small share of capacity): counted, a burst on a core 0.85 busy took the 20 ms average over
  ``on`` and an observed worker at a quarter of its REST V2 capacity lingered in every window
  (p50 0.60 ms against 0.14; RESULTS.md, "Background passes are not load"). That share
  (``serving``) decides the *entry* only. A saturated worker stays saturated on the whole
  core's share (``share``): at c=64 the background threads take about 5 % of the core in
  bursts of a few ms, and a recheck that fell into one ended the verdict for the tens of
  milliseconds its share took to climb back, 1.3-2.1 % of the throughput in three runs of
  ``benchmarks.thread_cpu`` when the serving share decided both.
* It is sampled at most every ``sample_ns`` (1 ms) by whoever asks (the batcher, when it
  decides whether to wait), so a busy batcher pays one comparison per call and one or two
  ``pread`` calls per millisecond; an idle one pays nothing. Samples are smoothed with a
  time-weighted moving average over ``tau_ns`` (20 ms): a load change shows within tens of
  milliseconds, one slow request does not.
* Hysteresis: *saturated* from ``on`` (0.9 of the core busy) up, *not saturated* again only at
  ``off`` (0.5) or below. Lingering itself lowers the share (fewer session runs), so a single
  threshold would flip the batcher between lingering and not at every step, as an earlier
  utilization gate did (RESULTS.md, "Micro-batching rule and c=1 latency"). Once lingering
  carries a load, the share stays above ``off`` as long as that load needs it; see
  :mod:`inference_server.batcher` for what was measured.
* Recheck: a saturated verdict is tested against ``on`` again ``recheck_ns`` (1 s) after it
  began or was last confirmed there; a share below ``on`` then ends it. Why: lingering that
  gathers almost nothing also holds the share above ``off``, by its own cost. At an eighth of
  its REST V2 capacity (1,800 req/s, one-row requests) a worker that once crossed 0.9 (a
  burst, a background pass, another tenant) lingered for good: 1.5-1.9 rows per session run,
  each handed to the session thread, 0.8 of the core instead of 0.45, p50 0.85 ms instead of
  0.28 -- in 8 of 10 windows with the prediction log and the sketches on, 1 of 10 with both
  off (RESULTS.md, "The batcher's two modes"). A load that needs lingering keeps the share
  at or above ``on`` and is confirmed at every recheck; one that lingers at 0.85 of the core
  drops out for the tens of milliseconds its share needs to climb back (no change at half and
  three quarters of capacity, nor at c=64, in the same measurements). An assumed verdict
  (``saturated=True``) holds until the first recheck too.

A detector belongs to one event loop (no locks); the batcher calls it from the loop only.

>>> busy_ns = iter([0, 2_000_000, 6_000_000, 7_500_000, 7_500_000])  # busy time so far
>>> detector = SaturationDetector(busy_clock=lambda: next(busy_ns), tau_ns=0)
>>> detector.saturated(0)  # the first call only starts measuring
False
>>> [detector.saturated(ms * 1_000_000) for ms in (4, 8, 10, 12)]  # wall time, ms
[False, True, True, False]
>>> detector.share  # idle for the last 2 ms (tau 0: no smoothing)
0.0
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from inference_server.background import BACKGROUND_CPU

if TYPE_CHECKING:
    from collections.abc import Callable

SATURATED_ON = 0.9
"""Share of one core from which the process counts as saturated."""

SATURATED_OFF = 0.5
"""Share of one core at or below which a saturated process counts as having idle time again."""

RECHECK_NS = 1_000_000_000
"""How long a saturated verdict holds above ``SATURATED_OFF`` before it is tested against
``SATURATED_ON`` again (1 s; 0: never)."""


def _none() -> int:
    return 0


class BusyClock:
    """ns the worker's core was busy so far, as well as this process can tell.

    A worker pinned to one CPU (``taskset -c N``, one worker per core) whose kernel exposes
    cpuidle residency (``/sys/devices/system/cpu/cpuN/cpuidle/state*/time``): wall time minus
    that CPU's idle time, whoever kept it busy. Otherwise: the CPU time of all the process's
    threads plus the time its event-loop thread waited on the run queue
    (``/proc/thread-self/schedstat``), an estimate that misses some of the time other tasks
    take. Files are opened on the first call (so the thread is the event loop's) and read with
    one ``pread`` each.
    """

    __slots__ = ("_fds", "_pinned")

    def __init__(self) -> None:
        self._fds: list[int] | None = None
        self._pinned = False

    def __call__(self) -> int:
        fds = self._fds
        if fds is None:
            fds = self._fds = self._open()
        try:
            if self._pinned:
                idle_us = sum(int(os.pread(fd, 32, 0)) for fd in fds)
                return time.monotonic_ns() - idle_us * 1000
            waited = int(os.pread(fds[0], 64, 0).split()[1]) if fds else 0
        except (OSError, IndexError, ValueError):
            waited = 0
        return time.process_time_ns() + waited

    def _open(self) -> list[int]:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        if len(cpus) == 1:
            root = f"/sys/devices/system/cpu/cpu{next(iter(cpus))}/cpuidle"
            try:
                names = sorted(n for n in os.listdir(root) if n.startswith("state"))
                fds = [os.open(f"{root}/{name}/time", os.O_RDONLY) for name in names]
            except OSError:
                fds = []
            if fds:
                self._pinned = True
                return fds
        try:
            return [os.open("/proc/thread-self/schedstat", os.O_RDONLY)]
        except OSError:
            return []

    def close(self) -> None:
        """Close the files (a later call reopens them)."""
        for fd in self._fds or ():
            os.close(fd)
        self._fds = None
        self._pinned = False


class SaturationDetector:
    """Whether the worker's core is kept busy (see the module docstring).

    Args:
        busy_clock: ns the core was busy so far (a :class:`BusyClock` by default; tests
            inject one).
        on: the smoothed share of a core from which the process is saturated.
        off: the share at or below which it is not saturated any more.
        tau_ns: the time constant of the moving average.
        sample_ns: the least wall time between two readings of the busy clock.
        saturated: the state assumed until the first samples say otherwise.
        recheck_ns: how long a saturated verdict holds between the thresholds before it is
            tested against ``on`` again (0: until the share falls to ``off``).
        background_clock: ns of CPU the worker's background threads used so far, left out of
            the verdict's share (default: :data:`~inference_server.background.BACKGROUND_CPU`
            with the default busy clock, none with an injected one).
    """

    __slots__ = ("_background", "_busy", "_last_background", "_last_busy", "_last_wall",
                 "_off", "_on", "_recheck_at", "_recheck_ns", "_sample_ns", "_tau",
                 "saturated_now", "serving", "share")  # fmt: skip

    def __init__(
        self,
        *,
        busy_clock: Callable[[], int] | None = None,
        on: float = SATURATED_ON,
        off: float = SATURATED_OFF,
        tau_ns: int = 20_000_000,
        sample_ns: int = 1_000_000,
        saturated: bool = False,
        recheck_ns: int = RECHECK_NS,
        background_clock: Callable[[], int] | None = None,
    ) -> None:
        self._busy = BusyClock() if busy_clock is None else busy_clock
        if background_clock is None:
            background_clock = BACKGROUND_CPU if busy_clock is None else _none
        self._background = background_clock
        self._last_background = 0
        self._on = on
        self._off = off
        self._tau = tau_ns
        self._sample_ns = sample_ns
        self._recheck_ns = recheck_ns
        self._recheck_at = 0
        self._last_wall: int | None = None
        self._last_busy = 0
        self.share = 1.0 if saturated else 0.0
        """The smoothed share of one core the process used (0..1, more with several cores):
        what the queue delay steers by (:mod:`inference_server.queue_delay`)."""
        self.serving = self.share
        """The same less the background threads' CPU time: what the verdict's entry reads."""
        self.saturated_now = saturated
        """The current verdict (what ``saturated`` last returned)."""

    def saturated(self, now_ns: int) -> bool:
        """Whether the process keeps its core busy, as of wall time ``now_ns`` (monotonic)."""
        last = self._last_wall
        if last is None:
            self._last_wall, self._last_busy = now_ns, self._busy()
            self._last_background = self._background()
            self._recheck_at = now_ns + self._recheck_ns  # NOTE: an assumed verdict holds too
        elif now_ns - last >= self._sample_ns:
            self._sample(now_ns, now_ns - last)
        return self.saturated_now

    def close(self) -> None:
        """Release the default clock's file (the detector keeps working; it reopens it)."""
        if isinstance(self._busy, BusyClock):
            self._busy.close()

    def _sample(self, now_ns: int, elapsed_ns: int) -> None:
        busy, background = self._busy(), self._background()
        used = (busy - self._last_busy) / elapsed_ns
        deferred = (background - self._last_background) / elapsed_ns
        self._last_wall, self._last_busy, self._last_background = now_ns, busy, background
        weight = elapsed_ns / (elapsed_ns + self._tau)
        self.share += weight * (used - self.share)
        self.serving += weight * (used - deferred - self.serving)
        saturated = self.saturated_now
        # NOTE: entry on the serving share, staying on the whole core's (see the docstring)
        level = self.share if saturated else self.serving
        if level >= self._on:
            if not saturated or now_ns >= self._recheck_at:
                self._recheck_at = now_ns + self._recheck_ns
            self.saturated_now = True
        elif saturated and (
            self.share <= self._off or (self._recheck_ns and now_ns >= self._recheck_at)
        ):
            self.saturated_now = False
