"""Drift sketches of every served version per time window, updated off the request path.

The request path calls :meth:`SketchBook.observe` with the validated input arrays and the
outputs of an answered request: a counter, a sampling decision and an append to a bounded
queue (no numpy work, no lock). A background task owned by the book drains the queue every
``server.sketch_flush_interval_s``: it groups the requests by version and window, concatenates their
arrays and sketches each feature and the score once per group (vectorised), in a worker
thread, then merges the result into the window's :class:`~modelyard.sketches.WindowSketches`.
That thread lets go of the GIL and the core (``os.sched_yield``) after every 8 features:
numpy on small arrays holds the GIL, and on a server pinned to one core a request arriving
during a flush then waits behind a slice of the flush, not behind the 5 ms GIL switch
interval. Each yield may delay the flush by up to that interval while requests keep the
loop busy, so the slices stay few (4 for 32 features).
A full queue drops the request's sketch and counts it (``dropped``): explicit overflow,
never a slower answer (``modelyard_sketch_queued`` / ``modelyard_sketch_dropped`` counters
on the metrics endpoint). Windows older than ``sketch_retention_s`` are forgotten. The book
reads the ``server.sketch*`` settings (:class:`modelyard.settings.ServerSettings`) as they are.

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
import os
import time
from typing import TYPE_CHECKING, NamedTuple

import msgspec
import numpy as np
from prometheus_client.core import CounterMetricFamily

from inference_server.drift.columns import feature_columns, score_column
from modelyard.settings import ServerSettings
from modelyard.sketches import (
    CategoricalProfile,
    CategoricalSketch,
    FeatureProfile,
    FeatureSketch,
    ReferenceProfile,
    WindowSketches,
    merge_all,
    merge_windows,
    sketch_column,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from prometheus_client.metrics_core import Metric

    from inference_server.loaded_version import LoadedVersion

log = logging.getLogger(__name__)

_YIELD_FEATURES = 8


class _Pending(NamedTuple):
    handle: LoadedVersion
    window: int
    arrays: Sequence[np.ndarray]
    outputs: Sequence[np.ndarray]


class SketchBook:
    """Per (model, version, window) sketches of one worker (see the module docstring)."""

    def __init__(self, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        self._window_s = self.settings.sketch_window_s
        self._queue: collections.deque[_Pending] = collections.deque()
        self._served: collections.Counter[tuple[str, str, int]] = collections.Counter()
        self._credit = 0.0
        self._windows: dict[tuple[str, str, int], WindowSketches] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.queued = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        """Whether this server sketches at all (``server.sketches``)."""
        return self.settings.sketches

    def observe(
        self, handle: LoadedVersion, arrays: Sequence[np.ndarray], outputs: Sequence[np.ndarray]
    ) -> None:
        """Queue one answered request for sketching (the request path's only call)."""
        window = int(time.time() // self._window_s)
        self._served[handle.name, handle.version_str, window] += 1
        self._credit += self.settings.sketch_sample_rate
        if self._credit < 1.0:
            return
        self._credit -= 1.0
        if len(self._queue) >= self.settings.sketch_queue_size:
            self.dropped += 1
            return
        self.queued += 1
        self._queue.append(_Pending(handle, window, arrays, outputs))

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

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sketch_flush_interval_s)
            try:
                await self.flush()
            except Exception:  # a sketching bug must not stop the loop: logged, next round
                log.exception("sketch flush failed")

    async def flush(self) -> None:
        """Sketch everything queued so far (reads call it first, so they see every request)."""
        async with self._lock:
            if not self._queue:
                return
            pending, self._queue = self._queue, collections.deque()
            served, self._served = self._served, collections.Counter()
            updates = await asyncio.to_thread(self._sketch, list(pending), served)
            self._windows.update(updates)
            self._forget_old()

    def _sketch(
        self, pending: list[_Pending], served: collections.Counter[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], WindowSketches]:
        groups: dict[tuple[str, str, int], list[_Pending]] = collections.defaultdict(list)
        for item in pending:
            groups[item.handle.name, item.handle.version_str, item.window].append(item)
        keys = set(groups) | set(served)
        updates = {}
        for key in keys:
            items = groups.get(key, [])
            fresh = self._group(key, items, served[key])
            profile = items[0].handle.reference if items else None
            updates[key] = self._merge(self._windows.get(key), fresh, profile)
        return updates

    def _group(
        self, key: tuple[str, str, int], items: list[_Pending], served: int
    ) -> WindowSketches:
        model, version, window = key
        start = dt.datetime.fromtimestamp(window * self._window_s, dt.UTC)
        sketches = WindowSketches(
            model=model,
            version=version,
            start=start,
            end=start + dt.timedelta(seconds=self._window_s),
            served=served,
        )
        if not items:
            return sketches
        handle = items[0].handle
        arrays = [np.concatenate([i.arrays[k] for i in items]) for k in range(len(items[0].arrays))]
        outputs = [
            np.concatenate([i.outputs[k] for i in items]) for k in range(len(items[0].outputs))
        ]
        profile = handle.reference
        features = {}
        for k, (name, values) in enumerate(feature_columns(handle.signature, arrays).items()):
            features[name] = sketch_column(values, profile.features.get(name) if profile else None)
            if k % _YIELD_FEATURES == _YIELD_FEATURES - 1:
                os.sched_yield()  # NOTE: releases the GIL; see the module docstring
        score = score_column(handle.signature, handle.description.task, outputs)
        score_sketch = None
        if score is not None:
            score_sketch = sketch_column(score, profile.score if profile else None)
        return msgspec.structs.replace(
            sketches,
            rows=int(arrays[0].shape[0]) if arrays else 0,
            requests=len(items),
            features=features,
            score=score_sketch,
        )

    def _merge(
        self, old: WindowSketches | None, fresh: WindowSketches, profile: ReferenceProfile | None
    ) -> WindowSketches:
        cap = self.settings.sketch_max_categories
        before = old.features if old is not None else {}
        known = profile.features if profile is not None else {}
        capped = {
            name: _capped(before.get(name), sketch, known.get(name), cap)
            for name, sketch in fresh.features.items()
        }
        score_profile = profile.score if profile is not None else None
        score = _capped(old.score if old else None, fresh.score, score_profile, cap)
        fresh = msgspec.structs.replace(fresh, features=capped, score=score)
        return fresh if old is None else merge_windows(old, fresh)

    def _forget_old(self) -> None:
        horizon = int((time.time() - self.settings.sketch_retention_s) // self._window_s)
        for key in [k for k in self._windows if k[2] < horizon]:
            del self._windows[key]

    async def read(
        self, model: str, version: str, since: dt.datetime | None, until: dt.datetime | None
    ) -> WindowSketches | None:
        """This worker's merged sketches of the windows overlapping ``[since, until)``.

        ``None`` when this worker has no window of that version in the range.
        """
        await self.flush()
        low = -math.inf if since is None else since.timestamp()
        high = math.inf if until is None else until.timestamp()
        chosen = [
            w
            for (m, v, window), w in sorted(self._windows.copy().items())
            if m == model
            and v == version
            and w.end.timestamp() > low
            and w.start.timestamp() < high
        ]
        return merge_all(chosen)


def _capped(
    old: FeatureSketch | None,
    fresh: FeatureSketch | None,
    profile: FeatureProfile | None,
    cap: int,
) -> FeatureSketch | None:
    """``fresh`` with categories beyond ``cap`` new ones (not in the reference) in ``other``."""
    if not isinstance(fresh, CategoricalSketch) or not isinstance(old, CategoricalSketch | None):
        return fresh
    reference = set(profile.counts) if isinstance(profile, CategoricalProfile) else set()
    seen = set(old.counts) if old is not None else set()
    room = max(cap - len(seen - reference), 0)
    kept: dict[str, int] = {}
    other = fresh.other
    for key, count in fresh.counts.items():
        if key in reference or key in seen:
            kept[key] = count
        elif room > 0:
            room -= 1
            kept[key] = count
        else:
            other += count
    return msgspec.structs.replace(fresh, counts=kept, other=other)


__all__ = ["SketchBook"]
