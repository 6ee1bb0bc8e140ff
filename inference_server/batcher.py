"""Micro-batching of one model version: queue requests, run them as one session call, split.

Rules (Triton's dynamic batcher, not MLServer's adaptive batcher):
* A batch holds at most ``max_batch_size`` rows. A request larger than that runs alone, never
  split across batches.
* ``max_queue_delay_us`` is measured from the *oldest* queued request: a batch is dispatched
  as soon as it is full or the oldest request has waited that long. With the default 0 the
  batcher takes whatever queued while the previous batch ran, which adapts the batch size to
  the load without adding latency at low load.
* The queue is bounded (``max_queue_size`` requests): a full queue refuses at once with
  RESOURCE_EXHAUSTED. A request still queued after ``queue_timeout_us`` fails with
  DEADLINE_EXCEEDED (checked when a batch is formed).
* Load detection: a request that arrives while a run is in progress (or others are queued)
  marks the batcher *under load* for ``LOAD_HOLD_NS`` (100 ms). Not under load -- a single
  closed-loop client never finds the session busy -- a request runs at once from ``submit``
  itself, skipping the queue and the consumer task, so c=1 pays no batching latency. Under
  load with the core saturated (next rule), a batch leaves when full, when no request arrived
  for ``linger_us`` (1 ms), or when the oldest has waited ``max_queue_delay_us`` (10 ms),
  whichever comes first.
  Why not plain Triton ``delay=0`` (dispatch whenever the session is free)? On one core each
  session run costs a fixed ~100-300 us (GIL hand-over, cold caches), more than a request
  takes to be admitted, so ``delay=0`` settles at 1-2 rows per run: measured with
  perf_analyzer at c=64, 2,414 req/s and 70% single-row runs, against 5,374 for a bare echo.
  Measured (perf_analyzer, server pinned to one core, busy shared machine, echo 5,600-5,650
  req/s at c=64 in the same hour): delay 3 ms / no linger 3,300 req/s (runs of <= 8 rows: a
  short cap keeps the batcher in the small-batch equilibrium); delay 8 ms 5,629 (62 rows per
  run); delay 10 ms + linger 1 ms 5,772 at c=64, 3,494 at c=16, 1,645 at c=4; linger 0.5 ms
  4,773 / 3,998 / 2,391. The defaults favour c=64; config.json tunes them per model.
* Saturation gate (issue 21): under load, the batcher waits for more rows only while the
  worker's core has no idle time (:class:`~inference_server.saturation.SaturationDetector`:
  the busy share of the core, smoothed over 20 ms; saturated from 0.9 up until it falls to
  0.5, and re-tested against 0.9 every second). With idle time it takes whatever queued while
  the previous batch ran and sends it as soon as the session is free (Triton's ``delay=0``),
  a small one inline (below): the extra session runs fit in the idle time, so waiting would
  only add latency. Why: at a steady open-loop rate each arrival
  extended the linger, up to the 10 ms cap, while the core had room -- at 1,000 req/s p50
  4.8-6.0 ms with the defaults against 0.50-0.55 ms with batching off, at 2,500 req/s
  11.6-12.2 against 0.5-0.8 ms. Arrival gaps are no substitute for the core's busy time: a
  gate on their moving average (linger while below linger/4) fixed those rates but took c=64
  from 2.2x to 0.98x of batching off, because a saturated closed loop admits requests only as
  fast as it answers them, so its gaps never look dense. The hysteresis keeps lingering on
  once it carries a load: lingering lowers the busy share (fewer session runs), and a single
  threshold flipped an earlier utilization gate between modes at every step. The signal costs
  one comparison per batch decision (0.2 us) and one or two ``pread`` calls (2-3.5 us) per
  millisecond at most. ``adaptive=False`` (``"batching": {"adaptive": false}``) keeps the old
  rule. Not yet measured on a core with idle time: the only run so far (benchmarks/RESULTS.md,
  "Hot path (issue 21)", ``python -m benchmarks.open_loop_batching``) found core 0 without
  idle time at every point (load 10), so the defaults kept lingering as the old rule does
  (medians per point 0.82-1.74x of batching off, old rule 0.59-1.78x, same run).
* Queue delay sized by the load (issue 21, open loop): on a saturated core the cap on the
  oldest request's wait is not ``max_queue_delay_us`` itself but
  :class:`~inference_server.queue_delay.AdaptiveQueueDelay`: it starts there and, while the
  batcher lingers, shortens while the core's busy share stays below 0.9 and lengthens while
  above (integral control on the delay's logarithm; floor 0.1 ms, ceiling the configured
  delay). Why: lingering pays only by the session runs it saves, and a steady open-loop rate
  the core keeps up with at small batches gained nothing from the full cap: at 2,356-2,578
  req/s gRPC (harness run of 14:42) the defaults lingered to the 10 ms cap (p50 9 ms, p99
  16 ms) while batching off held p99 at 4.4-5.7 ms. A saturated closed loop keeps its share
  near 1 whatever the batch, so its delay stays at the maximum and the population rule
  (below) still decides; arrival gaps are not the input for the reason above. Target 0.9,
  not 0.8: at 0.8 the controller kept lingering where batching off keeps up alone (2,000
  req/s: p50 2.5 ms against 0.65 ms off). Measured (``benchmarks.open_loop_batching``
  from main's tree and this one, 3 interleaved rounds, server on CPU 0, load 0.9-3.1):
  gRPC open loop, medians (range) over rounds, this rule against main: 2,000 req/s p50 1.76
  (1.66-2.25) ms / p99 5.95 (5.83-6.69) against 4.89 (0.67-6.73) / 13.96 (4.93-15.91);
  2,400 req/s 2.08 / 6.82 (6.52-25.91) against 9.25 / 16.48 (batching off: p99 184-446 ms,
  behind); 2,800 req/s 2.96 / 13.51 (7.71-25.59) against 9.99 / 16.84 (off
  answers 2,323-2,499). Closed loop: c=8 4,301 (4,253-4,391) req/s against 4,313
  (4,297-4,493), c=64 5,318 (4,747-5,389) against 5,149 (5,119-5,808), rows per run alike.
* Inline runs: an idle request whose rows times the version's single-row cost (measured at
  load, ``OnnxModel.row_cost_ns``) fit in ``inline_max_us`` (default 100 us) runs on the
  event loop itself, skipping the session thread: the hand-off there and back (two thread
  wake-ups, ``call_soon_threadsafe``) cost more than a 20-30 us model run (issue 21). It
  first yields one loop pass: requests already ready arrive meanwhile and queue (this one
  counts as dispatching); if any did, the model is under load and the run goes to the thread
  as before, so batching is untouched. Without that pass every request of a saturated loop
  ran inline, alone: c=64 fell to 0.57x of hand-off (measured, same server, 3 rounds). With
  it: c=1 1.14x throughput (rounds 1.02-1.16) and p50 -0.048 ms, c=64 1.00x (0.99-1.00)
  against ``inline_max_us=0``, reference model, busy 2-core EPYC (load ~7). The loop is
  blocked for one inline run only: at most ``inline_max_us`` at the load-time median cost,
  plus the run's variance (the slowest load-time run is logged per version). Under load a
  small batch runs inline too while the core has idle time (not saturated): the hand-off
  there and back then only adds its own cost, and at an eighth of capacity that cost held
  the core busy enough to keep the saturated verdict (RESULTS.md, "The batcher's two
  modes": with this and the recheck, p50 0.29 ms against 0.84 with the prediction log on).
  On a saturated core batches still go to the session thread, so the loop keeps admitting
  while they run.
* Closed loops below the batch size: the batcher keeps the peak number of requests it held
  at once over the last ``POPULATION_WINDOW_NS`` (250 ms), an estimate of how many requests
  the clients keep in flight. Once that many are queued nobody else is coming until some
  are answered, so the batch leaves without waiting for the linger. Measured (server CPU 0,
  our gRPC client CPU 1, EPYC VM, two interleaved rounds): c=8 1,965-2,327 req/s against
  1,675-1,684 before, c=16 2,324-2,945 against 2,036-2,225, c=64 2,848-3,241 against
  2,783-2,913; open loop 1,000 req/s p99 8.0-9.9 ms against 11.6-13.8 ms. The estimate lags
  when clients leave; then a batch waits for the linger, as it did before.
* Queued without waiting (``enqueue``, a gRPC stream's requests): the request goes to the
  queue at once and its caller gets the future, so a stream needs no task per request and its
  writer wakes once per batch, not once per request. The idle fast path is the consumer's
  here: a batch that leaves while the batcher is not under load runs inline when its rows
  fit ``inline_max_rows`` (the consumer's own wake-up was the loop pass that lets ready
  requests queue first). A request that finds the session busy marks the load as ``submit``
  does; so does one whose stream has earlier answers still unwritten (``busy``): a stream
  reads one message per loop pass, so without that a pipelining client could settle in runs
  of one inline request each, never finding the session busy. Its requests then batch like
  concurrent unary ones.
* Wake-ups: an arrival wakes the consumer only when it changes what the consumer would do
  (the queue was empty, or the batch is now full or holds every request in flight); a
  lingering consumer otherwise keeps its timer, which already re-checks the queue. Waking it
  per arrival cost a task step and a new timer per request under load.
* One consumer task per batcher runs one batch at a time (the version's session thread);
  ``session.run`` happens off the event-loop thread. If a batch fails, every request in it
  gets the error; a cancelled waiter is skipped. No request ever hangs: ``close()`` drains.
* The hot path takes no locks (everything runs on the event loop) and merges with one
  ``np.concatenate`` per input; split returns views, never copies.
* Tap (issue 16): each request may carry an opaque ``tag``; with a ``tap`` set, every session
  run hands the tap the tags and row counts of the requests it answered, with the run's whole
  input and output arrays, once per run and before any waiter is resumed (after the run's
  results are set, which only schedules the waiters). The prediction log and the drift
  sketches read the answers there (:mod:`inference_server.answers`): one entry per run
  instead of one per request. A request cancelled while its run was on the session thread is
  left out (the tap then gets each remaining request alone, its own arrays and output rows).
  A tap that raises is logged and the batcher goes on: the answers still go out, and the
  batcher keeps serving (the tap's own counters say what it did not record). The same holds
  for the ``observer`` (the version's statistics): both are called after the answers are set,
  and an exception from either used to end the consumer task, after which every later queued
  request of the version waited forever.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import TYPE_CHECKING, ParamSpec

import numpy as np

from inference_server.queue_delay import AdaptiveQueueDelay
from inference_server.saturation import SaturationDetector
from modelyard.errors import DeadlineExceeded, ResourceExhausted, Unavailable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    RunFn = Callable[[list[np.ndarray]], Awaitable[list[np.ndarray]]]
    SyncRunFn = Callable[[list[np.ndarray]], list[np.ndarray]]
    BatchObserver = Callable[[int, Sequence[int], int], None]
    """Called per batch with (rows, each request's queue wait in ns, compute ns)."""
    BatchTap = Callable[[list[object], list[int], list[np.ndarray], list[np.ndarray]], None]
    """Called per session run with the answered requests' (tags, rows, inputs, outputs)."""


log = logging.getLogger(__name__)

TAP_FAILED = "the answer tap failed on a session run; its answers went out unrecorded"

_P = ParamSpec("_P")

OBSERVER_FAILED = "the batch observer failed on a session run; its answers went out uncounted"

NO_WAIT = (0,)
"""The queue waits of a request that ran at once."""

POPULATION_WINDOW_NS = 250_000_000
"""The window over which the batcher counts its peak number of requests (250 ms)."""

LOAD_HOLD_NS = 100_000_000
"""How long the batcher counts as under load after a request last had to queue (100 ms)."""


def merge_batch(requests: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Concatenate the inputs of several requests along the batch dimension.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.random((2, 3)), rng.random((1, 3))
    >>> merged = merge_batch([[a], [b]])
    >>> merged[0].shape
    (3, 3)
    >>> parts = split_batch(merged, [2, 1])
    >>> bool((parts[0][0] == a).all() and (parts[1][0] == b).all())
    True
    """
    if len(requests) == 1:
        return list(requests[0])
    return [np.concatenate(column) for column in zip(*requests, strict=True)]


def split_batch(outputs: Sequence[np.ndarray], sizes: Sequence[int]) -> list[list[np.ndarray]]:
    """Split batch outputs back into each request's rows, in request order (views).

    An output whose first dimension is not the batch's row count (no batch dimension) goes to
    every request whole.
    """
    if len(sizes) == 1:
        return [list(outputs)]
    total = sum(sizes)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for output in outputs:
        if output.ndim == 0 or output.shape[0] != total:
            for part in parts:
                part.append(output)
            continue
        start = 0
        for part, size in zip(parts, sizes, strict=True):
            part.append(output[start : start + size])
            start += size
    return parts


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Pending:
    __slots__ = ("arrays", "enqueued", "future", "rows", "tag")

    def __init__(
        self,
        arrays: list[np.ndarray],
        rows: int,
        future: asyncio.Future[list[np.ndarray]],
        tag: object,
    ) -> None:
        self.arrays = arrays
        self.rows = rows
        self.future = future
        self.tag = tag
        self.enqueued = time.monotonic_ns()


class MicroBatcher:
    """Dynamic batcher of one model version (see the module docstring for the rules)."""

    def __init__(
        self,
        run: RunFn,
        *,
        max_batch_size: int = 64,
        max_queue_delay_us: int = 10_000,
        linger_us: int = 1000,
        max_queue_size: int = 1024,
        queue_timeout_us: int = 0,
        observer: BatchObserver | None = None,
        inline: SyncRunFn | None = None,
        inline_max_rows: int = 0,
        adaptive: bool = True,
        saturation: SaturationDetector | None = None,
        queue_delay: AdaptiveQueueDelay | None = None,
        tap: BatchTap | None = None,
    ) -> None:
        self._run = run
        self._tap = tap
        # None: linger whenever under load (``adaptive`` off, the rule before issue 21)
        self._saturation = (saturation or SaturationDetector()) if adaptive else None
        self._queue_delay = queue_delay or AdaptiveQueueDelay(max_queue_delay_us * 1000)
        self._inline = inline
        self._inline_rows = inline_max_rows if inline is not None else 0
        self._max_rows = max_batch_size
        self._delay_ns = max_queue_delay_us * 1000
        self._linger_ns_setting = linger_us * 1000
        self._last_arrival = 0
        self._active = 0
        self._peak = 0
        self._population = 0
        self._window_end = 0
        self._load_until = 0
        self._dispatching = False
        self._max_queue = max_queue_size
        self._timeout_ns = queue_timeout_us * 1000
        self._observer = observer
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the consumer task; call from the running event loop."""
        # NOTE: created here, not in __init__, so the task belongs to the running loop.
        self._task = asyncio.get_running_loop().create_task(self._consume())

    async def submit(
        self, arrays: list[np.ndarray], rows: int, tag: object = None
    ) -> list[np.ndarray]:
        """Queue one request's inputs and wait for its own output rows (``tag``: the tap's).

        Raises:
            ResourceExhausted: the queue is full.
            Unavailable: the batcher is closing.
            DeadlineExceeded: the request waited longer than the queue timeout.
        """
        if self._closing:
            raise Unavailable("model version is being unloaded; retry")
        now = time.monotonic_ns()
        if not (self._dispatching or self._queue) and now >= self._load_until:
            self._count_in(now)
            try:
                return await self._run_alone(arrays, rows, tag)
            finally:
                self._active -= 1
        return await self.enqueue(arrays, rows, tag=tag)

    def enqueue(
        self, arrays: list[np.ndarray], rows: int, busy: bool = False, tag: object = None
    ) -> asyncio.Future[list[np.ndarray]]:
        """Queue one request's inputs now; the future gets its own output rows.

        No idle fast path here (the consumer runs a lone idle batch inline instead), and no
        task: a caller with many requests in flight (a gRPC stream) holds only futures.
        ``busy``: the caller has other requests of its own unanswered (a stream whose client
        pipelines), which counts as load like a request that has to queue.

        Raises:
            ResourceExhausted: the queue is full.
            Unavailable: the batcher is closing.
        """
        if self._closing:
            raise Unavailable("model version is being unloaded; retry")
        if len(self._queue) >= self._max_queue:
            raise ResourceExhausted(f"batch queue is full ({self._max_queue} requests); retry")
        now = time.monotonic_ns()
        self._count_in(now)
        if busy or self._dispatching or self._queue:
            self._load_until = now + LOAD_HOLD_NS  # this request has to queue: under load
        future: asyncio.Future[list[np.ndarray]] = asyncio.get_running_loop().create_future()
        item = _Pending(arrays, rows, future, tag)
        self._queue.append(item)
        self._queued_rows += rows
        self._last_arrival = item.enqueued
        if not self._dispatching and (len(self._queue) == 1 or self._batch_ready()):
            self._wake()  # else the consumer's own timer (or the run's end) re-checks the queue
        return future

    def _batch_ready(self) -> bool:
        """Whether the queue may leave before its linger: full, or every request the clients
        keep in flight is queued (see :meth:`_linger_ns`)."""
        return self._queued_rows >= self._max_rows or len(self._queue) >= max(
            self._population, self._peak
        )

    def _count_in(self, now: int) -> None:
        """Count one more request in the batcher and keep the peak of the last window.

        The peak estimates how many requests the clients keep in flight: once that many are
        queued, nobody else is coming until some are answered, so waiting cannot fill the
        batch further (closed-loop clients below ``max_batch_size``).
        """
        self._active += 1
        if now >= self._window_end:
            self._population = self._peak
            self._peak = 0
            self._window_end = now + POPULATION_WINDOW_NS
        if self._active > self._peak:
            self._peak = self._active

    async def _run_alone(
        self, arrays: list[np.ndarray], rows: int, tag: object
    ) -> list[np.ndarray]:
        """Idle fast path: run at once, without a trip through the queue and the consumer.

        Small enough (``rows <= inline_max_rows``), the run happens right here on the event
        loop: no hand-off to the session thread and back, which costs more than a small model.
        """
        self._dispatching = True
        start = time.monotonic_ns()
        try:
            if rows <= self._inline_rows and self._inline is not None:
                # One loop pass first: requests already ready arrive (and queue, since this one
                # counts as dispatching). If any did, the model is under load: hand off, so the
                # loop keeps admitting requests and the queued ones form a batch.
                await asyncio.sleep(0)
                outputs = await self._run(arrays) if self._queue else self._inline(arrays)
            else:
                outputs = await self._run(arrays)
        finally:
            self._dispatching = False
            if self._queue or self._closing:
                # NOTE: only then has the consumer anything to do; waking it after every idle
                # run cost a task step and a new future per request at c=1 (issue 21).
                self._wake()
        if self._tap is not None:
            guarded(TAP_FAILED, self._tap, [tag], [rows], arrays, outputs)
        if self._observer is not None:
            guarded(OBSERVER_FAILED, self._observer, rows, NO_WAIT, time.monotonic_ns() - start)
        return outputs

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def close(self) -> None:
        """Refuse new requests, finish the queued ones, stop the consumer."""
        self._closing = True
        if self._task is not None:
            self._wake()
            await self._task
        if self._saturation is not None:
            self._saturation.close()

    async def _wait(self, timeout_ns: int | None) -> None:
        """Sleep until woken or ``timeout_ns`` passed (a plain timer: ``asyncio.wait_for``
        wraps the future in a task and showed up in profiles at c=64)."""
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        timer = None if timeout_ns is None else loop.call_later(timeout_ns / 1e9, _resolve, wakeup)
        try:
            await wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _consume(self) -> None:
        while True:
            if self._dispatching or not self._queue:
                if self._closing and not self._dispatching and not self._queue:
                    return
                await self._wait(None)
                continue
            remaining = self._linger_ns()
            if remaining > 0:
                await self._wait(remaining)
                continue
            batch = self._take()
            self._dispatching = True
            try:
                await self._dispatch(batch)
            finally:
                self._dispatching = False

    def _linger_ns(self) -> int:
        """How much longer to wait for more rows before dispatching (<= 0: dispatch now).

        Not under load, full, closing, holding as many requests as the clients keep in flight
        (the recent peak), or with idle time on the core: now. Under load on a saturated core:
        until the oldest request has waited the delay the load needs (at most
        ``max_queue_delay``; :class:`AdaptiveQueueDelay`), or, with ``linger``, arrivals pause
        that long.
        """
        now = time.monotonic_ns()
        if now >= self._load_until or self._closing:
            return 0
        if self._batch_ready():
            return 0  # full, or every request the clients keep in flight is here
        saturation = self._saturation
        if saturation is None:
            delay = self._delay_ns
        elif saturation.saturated(now):
            delay = self._queue_delay.cap_ns(now, saturation.share)  # as long as the load needs
        else:
            return 0  # the core has idle time: waiting would add latency and save nothing
        oldest_deadline = self._queue[0].enqueued + delay
        if self._linger_ns_setting:
            oldest_deadline = min(oldest_deadline, self._last_arrival + self._linger_ns_setting)
        return oldest_deadline - now

    def _idle_core(self, now: int) -> bool:
        """Whether a small batch may run inline: not under load, or under load on a core with
        idle time (the saturation gate; without one, only when not under load)."""
        if now >= self._load_until:
            return True
        saturation = self._saturation
        return saturation is not None and not saturation.saturated(now)

    def _take(self) -> list[_Pending]:
        queue = self._queue
        batch = [queue.popleft()]
        rows = batch[0].rows
        while queue and rows + queue[0].rows <= self._max_rows:
            item = queue.popleft()
            rows += item.rows
            batch.append(item)
        self._queued_rows -= rows
        return batch

    def _live(self, batch: list[_Pending], now: int) -> list[_Pending]:
        live = []
        for item in batch:
            if item.future.done():
                continue
            if self._timeout_ns and now - item.enqueued > self._timeout_ns:
                waited_ms = (now - item.enqueued) / 1e6
                item.future.set_exception(
                    DeadlineExceeded(f"request waited {waited_ms:.1f} ms in the batch queue")
                )
                continue
            live.append(item)
        return live

    async def _dispatch(self, batch: list[_Pending]) -> None:
        try:
            await self._settle(batch)
        finally:
            self._active -= len(batch)  # every queued request is counted out here, once

    async def _settle(self, batch: list[_Pending]) -> None:
        start = time.monotonic_ns()
        batch = self._live(batch, start)
        if not batch:
            return
        rows = sum(item.rows for item in batch)
        try:
            merged = merge_batch([item.arrays for item in batch])
            if rows <= self._inline_rows and self._inline and self._idle_core(start):
                outputs = self._inline(merged)  # small, core not saturated: skip the hand-off
            else:
                outputs = await self._run(merged)
            sizes = [item.rows for item in batch]
            parts = split_batch(outputs, sizes)
        except Exception as exc:  # every waiter gets the batch's error, whatever it is
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        # NOTE: one pass resolves the waiters and notes who gave up (cancelled while the run
        # was on the session thread); the tap runs after it, still before any waiter resumes
        # (set_result only schedules them), so the tap's own done-check per request is saved
        gone: list[_Pending] = []
        for item, part in zip(batch, parts, strict=True):
            if item.future.done():
                gone.append(item)
            else:
                item.future.set_result(part)
        if self._tap is not None:
            _tap_run(self._tap, batch, sizes, merged, outputs, parts, gone)
        if self._observer is not None:
            end = time.monotonic_ns()
            waits = [start - item.enqueued for item in batch]
            guarded(OBSERVER_FAILED, self._observer, rows, waits, end - start)


def _tap_run(
    tap: BatchTap,
    batch: list[_Pending],
    sizes: list[int],
    merged: list[np.ndarray],
    outputs: list[np.ndarray],
    parts: list[list[np.ndarray]],
    gone: list[_Pending],
) -> None:
    """Hand a run's answered requests to the tap (see the module docstring): the whole run,
    or, when some of its waiters were ``gone``, each remaining request alone."""
    if not gone:
        guarded(TAP_FAILED, tap, [item.tag for item in batch], sizes, merged, outputs)
        return
    for item, part in zip(batch, parts, strict=True):
        if item not in gone:
            guarded(TAP_FAILED, tap, [item.tag], [item.rows], item.arrays, part)


def guarded(failed: str, call: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
    """Call the tap or the observer after a run: a failure is logged as ``failed``, not raised
    (the answers went out; the batcher must go on). ``try`` costs nothing when nothing is
    raised (CPython 3.11)."""
    try:
        call(*args, **kwargs)
    except Exception:
        log.exception(failed)
