"""Drift sketches of every served version per time window, updated off the request path.

Every session run calls :meth:`SketchBook.observe` once with its whole input and output
arrays and the number of requests it answered (:mod:`inference_server.answers`): a window
number, a sampling decision and an append to a bounded queue (no numpy work, no lock; one
queue item per run, not per request; requests not queued -- sampled out or dropped -- are
counted per version and window so that ``served`` stays exact). Sampling keeps a credit of
``rate`` per request and queues a whole run when the credit covers its requests, so the share
of requests sketched is the rate. A background task owned by
the book drains the queue every ``server.sketch_flush_interval_s``: in a worker thread it
groups the requests by version and window, concatenates their arrays and folds each group into
the window's :class:`~inference_server.drift.tally.WindowTally` -- numpy count arrays added in
place with a few whole-batch calls, not a Python merge of per-feature sketches per flush. A
window's tally becomes wire :class:`~modelyard.sketches.WindowSketches` when a read asks for
it and once when the window closes (the first flush after its end: every later request
belongs to a later window); a request that still reaches a closed window (the clock stepped
back) is merged into it with :func:`~modelyard.sketches.merge_windows`. The fold runs on
the book's own thread (``sketch-fold``), demoted (a nice value, ``server.background_nice``) and
in GIL slices (:mod:`inference_server.background`): it lets go of the GIL and the core
(``os.sched_yield``) between groups and chunks (1,024 requests or 128 runs, whichever comes
first) once a 0.2 ms slice is used up. numpy on small arrays holds the GIL, and on a server
pinned to one core a request arriving during a flush then waits behind one fold of at most
1,024 requests or 128 runs (with 32
features about 0.25 ms on log buckets, 0.6 ms on reference bins;
:mod:`~inference_server.drift.tally`), not behind the 5 ms GIL switch interval. A flush has
fixed costs (~0.7 ms of the thread's CPU at 2,000 req/s on the harness's machine, whatever its
size); flushing once a second instead of every 0.1 s was tried and did not lower p99 at 2,000
or 8,000 req/s (``benchmarks/latency_cost.py``, 5 rounds: 1.62 / 2.84 ms against 1.32 / 2.67).
A full queue drops the request's sketch and counts it (``dropped``): explicit overflow,
never a slower answer. The metrics endpoint shows the ``modelyard_sketch_queued`` and
``modelyard_sketch_dropped`` counters, and ``modelyard_sketch_cpu_seconds``: the folds' thread
CPU time, what sketching costs the worker's core beside its ~0.5 µs per request on the
request path. Windows older than ``sketch_retention_s`` are forgotten. The book reads the
``server.sketch*`` settings (:class:`modelyard.settings.ServerSettings`) once.

Numeric features are counted on the bins of the version's ``reference.json`` when it has one
(read at load, :attr:`LoadedVersion.reference`), else in log buckets; categorical inputs
(and features the reference marks categorical) count categories, with at most
``sketch_max_categories`` distinct categories the reference does not have per feature and window
(the rest in ``other``; the reference's own categories are always counted).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client.core import CounterMetricFamily

from inference_server.background import Slicer, demote_current_thread
from inference_server.drift.columns import feature_columns, score_column
from inference_server.drift.tally import Column, WindowTally
from modelyard.settings import ServerSettings
from modelyard.sketches import FeatureProfile, WindowSketches, merge_all, merge_windows

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from prometheus_client.metrics_core import Metric

    from inference_server.loaded_version import LoadedVersion

log = logging.getLogger(__name__)

_CHUNK = 1024
"""Requests folded at a time (whole runs: a chunk ends after the run that reaches it); the
thread yields the GIL between chunks."""

_CHUNK_RUNS = 128
"""Runs folded at a time, whatever their requests. At a small share of capacity every run
answers one request, and a flush of 700 one-request runs folded as one chunk held the GIL for
about 1.4 ms (the per-run concatenations and the columns), which the slowest requests waited
behind: REST V2 p99 at 3,600 req/s 1.16-1.28 ms, with chunks of 64 runs 0.82-0.99 (two runs of
8-10 rounds; 0.59-0.60 with the sketches and the log off). Each chunk has a fixed cost (about
0.3 ms of the fold's CPU): at 3,000 req/s the folds took 2.6-3.1 µs per request in one chunk,
5.3 in chunks of 64 runs, 4.1 of 128, 3.9 of 256, and in one run of 8 rounds p99 did not tell
64, 128 and 256 apart (1.11 / 1.07 / 1.14 ms at 3,600 req/s, 2.43 / 2.22 / 2.52 at 7,300).
At saturation a run holds dozens of requests and :data:`_CHUNK` ends the chunk first
(RESULTS.md, "Background passes are not load")."""


_Key = tuple[str, str, int]
"""(model, version, window number)."""

_Pending = tuple["LoadedVersion", int, "Sequence[np.ndarray]", "Sequence[np.ndarray]", int]
"""A queued run: its version, window number, input arrays, outputs and requests answered."""


class SketchBook:
    """Per (model, version, window) sketches of one worker (see the module docstring).

    Args:
        settings: the server settings (``server.sketch*``).
        clock: wall-clock seconds (windows start at multiples of ``sketch_window_s``).
    """

    def __init__(
        self, settings: ServerSettings | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings or ServerSettings()
        self._clock = clock
        self._window_s = self.settings.sketch_window_s
        self._rate = self.settings.sketch_sample_rate
        self._capacity = self.settings.sketch_queue_size
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_requests = 0
        self._unqueued: collections.Counter[tuple[LoadedVersion, int]] = collections.Counter()
        self._credit = 0.0
        self._live: dict[_Key, WindowTally] = {}
        self._closed: dict[_Key, WindowSketches] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.queued = 0
        self.dropped = 0
        self.fold_seconds = 0.0
        self._slicer = Slicer()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def enabled(self) -> bool:
        """Whether this server sketches at all (``server.sketches``)."""
        return self.settings.sketches

    def observe(
        self,
        handle: LoadedVersion,
        arrays: Sequence[np.ndarray],
        outputs: Sequence[np.ndarray],
        requests: int = 1,
    ) -> None:
        """Queue one run's answers for sketching: ``arrays``/``outputs`` hold the rows of its
        ``requests`` answered requests (the only call on the serving path)."""
        window = int(self._clock() // self._window_s)
        credit = self._credit + self._rate * requests
        if credit >= requests:
            credit -= requests
            if self._queued_requests + requests <= self._capacity:
                self._credit = credit
                self.queued += requests
                self._queued_requests += requests
                self._queue.append((handle, window, arrays, outputs, requests))
                return
            self.dropped += requests
        self._credit = credit
        self._unqueued[handle, window] += requests

    def collect(self) -> Iterator[Metric]:
        """Prometheus counters (the server registers the book with its registry)."""
        yield CounterMetricFamily(
            "modelyard_sketch_queued",
            "Answered requests queued for drift sketching.",
            value=self.queued,
        )
        yield CounterMetricFamily(
            "modelyard_sketch_dropped",
            "Answered requests not sketched because the sketch queue was full.",
            value=self.dropped,
        )
        yield CounterMetricFamily(
            "modelyard_sketch_cpu_seconds",
            "CPU time of the background sketching (the folds into the windows' tallies).",
            value=self.fold_seconds,
        )

    def start(self) -> None:
        """Start the background task (in the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the background task after sketching what is queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sketch_flush_interval_s)
            try:
                await self.flush()
            except Exception:  # a sketching bug must not stop the loop: logged, next round
                log.exception("sketch flush failed")

    async def flush(self) -> None:
        """Sketch everything queued so far (reads do it first, so they see every request)."""
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        if not self._queue and not self._unqueued:
            return
        pending, self._queue = self._queue, collections.deque()
        self._queued_requests = 0
        unqueued, self._unqueued = self._unqueued, collections.Counter()
        # NOTE: taken with the drain: every request observed later is in this window or later
        now = self._clock()
        if self._executor is None:  # NOTE: its one thread starts with the first fold
            self._executor = ThreadPoolExecutor(
                1,
                thread_name_prefix="sketch-fold",
                initializer=demote_current_thread,
                initargs=(self.settings.background_nice,),
            )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._fold, list(pending), unqueued, now)

    def _fold(
        self,
        pending: list[_Pending],
        unqueued: collections.Counter[tuple[LoadedVersion, int]],
        now: float,
    ) -> None:
        started = time.thread_time()
        self._slicer.restart()
        groups = _groups(pending)
        served: collections.Counter[_Key] = collections.Counter()
        for (handle, window), count in unqueued.items():
            served[handle.name, handle.version_str, window] += count
        for key in groups.keys() | served.keys():
            items = groups.get(key, [])
            late = key in self._closed
            tally = self._new_tally(key) if late else self._live.get(key)
            if tally is None:
                tally = self._live[key] = self._new_tally(key)
            tally.served += served[key] + sum(item[4] for item in items)
            chunk: list[_Pending] = []
            requests = 0
            for item in items:
                chunk.append(item)
                requests += item[4]
                if requests >= _CHUNK or len(chunk) >= _CHUNK_RUNS:
                    self._add_chunk(tally, chunk)
                    chunk, requests = [], 0
            if chunk:
                self._add_chunk(tally, chunk)
            if late:
                self._closed[key] = merge_windows(self._closed[key], tally.sketches())
        self._close_and_forget(now)
        self.fold_seconds += time.thread_time() - started

    def _new_tally(self, key: _Key) -> WindowTally:
        model, version, window = key
        start = dt.datetime.fromtimestamp(window * self._window_s, dt.UTC)
        return WindowTally(model, version, start, start + dt.timedelta(seconds=self._window_s))

    def _add_chunk(self, tally: WindowTally, chunk: list[_Pending]) -> None:
        """Fold ``chunk``, yielding the GIL first if the flush's slice is used up."""
        self._slicer.tick()  # NOTE: may release the GIL; see the module docstring
        self._add(tally, chunk)

    def _add(self, tally: WindowTally, items: list[_Pending]) -> None:
        handle = items[0][0]
        arrays = [np.concatenate([i[2][k] for i in items]) for k in range(len(items[0][2]))]
        outputs = [np.concatenate([i[3][k] for i in items]) for k in range(len(items[0][3]))]
        columns: list[Column] = list(feature_columns(handle.signature, arrays).items())
        score = score_column(handle.signature, handle.description.task, outputs)
        if score is not None:
            columns.append((None, score))
        profile = handle.reference
        profiles: dict[str | None, FeatureProfile] = {}
        if profile is not None:
            profiles.update(profile.features)
            if profile.score is not None:
                profiles[None] = profile.score
        requests = sum(item[4] for item in items)
        tally.add(columns, profiles, self.settings.sketch_max_categories, requests=requests)

    def _close_and_forget(self, now: float) -> None:
        current = int(now // self._window_s)
        for key in [k for k in self._live if k[2] < current]:
            self._closed[key] = self._live.pop(key).sketches()
        horizon = int((now - self.settings.sketch_retention_s) // self._window_s)
        for key in [k for k in self._closed if k[2] < horizon]:
            del self._closed[key]

    async def read(
        self, model: str, version: str, since: dt.datetime | None, until: dt.datetime | None
    ) -> WindowSketches | None:
        """This worker's merged sketches of the windows overlapping ``[since, until)``.

        ``None`` when this worker has no window of that version in the range.
        """
        low = -math.inf if since is None else since.timestamp()
        high = math.inf if until is None else until.timestamp()
        async with self._lock:
            await self._flush()
            keys = [
                key
                for key in sorted(self._closed.keys() | self._live.keys())
                if key[:2] == (model, version)
                and (key[2] + 1) * self._window_s > low
                and key[2] * self._window_s < high
            ]
            chosen = [
                self._closed[key] if key in self._closed else self._live[key].sketches()
                for key in keys
            ]
        return merge_all(chosen)


def _groups(pending: list[_Pending]) -> dict[_Key, list[_Pending]]:
    """The queued requests by (model, version, window), in queue order."""
    if not pending:
        return {}
    handles, windows, _, _, _ = zip(*pending, strict=True)
    first = pending[0]
    if len(set(windows)) == 1 and len(set(map(id, handles))) == 1:  # the usual flush
        return {(first[0].name, first[0].version_str, first[1]): pending}
    groups: dict[_Key, list[_Pending]] = collections.defaultdict(list)
    for item in pending:
        groups[item[0].name, item[0].version_str, item[1]].append(item)
    return groups


__all__ = ["SketchBook"]
