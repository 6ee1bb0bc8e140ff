"""One loaded model version: its session, batcher, statistics, metrics and reference count.

A :class:`LoadedVersion` is what a request resolves to. ``submit`` is bound once at load time
to either the version's :class:`~inference_server.batcher.MicroBatcher` or a direct session
run (batching switched off in config.json, or a model without a variable batch dimension), so
the request path makes no per-request decision about it. ``enqueue`` is the same choice for
callers that hold a future instead of awaiting (a gRPC stream's requests). Both take the
request's ``tag``, which every session run hands to the server's :class:`AnswerTap` with the
run's arrays (the prediction log and the drift sketches: :mod:`inference_server.answers`).
Metrics are reported through :class:`VersionHooks` (implemented by
:mod:`inference_server.metrics`); each version gets its own pre-bound :class:`VersionRecorder`
so the hot path does no label lookups.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import TYPE_CHECKING, Protocol

from inference_server.batcher import NO_WAIT, OBSERVER_FAILED, TAP_FAILED, MicroBatcher, guarded
from inference_server.core.types import ModelStatistics
from inference_server.core.validation import InputLimits
from inference_server.runtime import OnnxModel
from modelyard.sketches import ReferenceProfile, read_reference

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    import numpy as np

    from modelyard.model_repository import ModelConfig, VersionEntry


log = logging.getLogger(__name__)


class VersionRecorder(Protocol):
    """Per-version metrics sink (pre-bound labels)."""

    def request(self, seconds: float) -> None:
        """One successful request took ``seconds``."""

    def batch(self, rows: int, queue_waits_ns: Sequence[int], compute_ns: int) -> None:
        """One session run of ``rows`` rows; one queue wait per request in it."""


class VersionHooks(Protocol):
    """Metrics and events of the model manager."""

    def event(self, model: str, version: int, what: str) -> None:
        """A load/unload event (``load_started``, ``loaded``, ``load_failed``, ``unloaded``)."""

    def recorder(self, model: str, version: str) -> VersionRecorder:
        """The metrics sink of one version."""

    def failure(self, model: str, version: str, code: str, seconds: float) -> None:
        """One failed request with its error code."""


class AnswerTap(Protocol):
    """Where every session run's answered requests go, once per run (the server's prediction
    log and drift sketches: :class:`inference_server.answers.Answers`)."""

    def __call__(
        self,
        handle: LoadedVersion,
        tags: list[object],
        rows: list[int],
        inputs: list[np.ndarray],
        outputs: list[np.ndarray],
    ) -> None:
        """``tags`` and ``rows``: the answered requests'; ``inputs``/``outputs``: the run's
        arrays, the requests' rows concatenated in that order."""


class NullRecorder:
    """A recorder that records nothing."""

    def request(self, seconds: float) -> None:
        """Record nothing."""

    def batch(self, rows: int, queue_waits_ns: Sequence[int], compute_ns: int) -> None:
        """Record nothing."""


class NullHooks:
    """Hooks that record nothing (a server without metrics)."""

    def event(self, model: str, version: int, what: str) -> None:
        """Record nothing."""

    def recorder(self, model: str, version: str) -> VersionRecorder:
        """A recorder that records nothing."""
        return NullRecorder()

    def failure(self, model: str, version: str, code: str, seconds: float) -> None:
        """Record nothing."""


INLINE_ROWS_CAP = 64
"""Most rows ever run inline on the event loop, however cheap the model."""


def inline_rows(inline_max_us: int, row_cost_ns: int) -> int:
    """How many rows an idle request may have to run inline (0: never).

    >>> inline_rows(100, 25_000), inline_rows(100, 250_000), inline_rows(0, 1_000)
    (4, 0, 0)
    >>> inline_rows(100, 0), inline_rows(10_000, 1_000)
    (0, 64)
    """
    if inline_max_us <= 0 or row_cost_ns <= 0:
        return 0
    return min(INLINE_ROWS_CAP, inline_max_us * 1000 // row_cost_ns)


class LoadedVersion:
    """A ready model version (see the module docstring)."""

    def __init__(
        self,
        name: str,
        version: int,
        model: OnnxModel,
        config: ModelConfig,
        hooks: VersionHooks,
        answers: AnswerTap | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.version_str = str(version)
        self.model = model
        self.config = config
        self.description = model.description
        self.signature = model.description.signature
        self.limits = InputLimits(
            allow_non_finite=config.allow_non_finite, max_rows=config.max_rows_per_request
        )
        self.output_datatypes = [s.datatype for s in self.signature.outputs]
        self.output_index = {s.name: i for i, s in enumerate(self.signature.outputs)}
        self.logs_every_request = config.prediction_log.records_all
        """Whether the prediction log records every request of this version (config.json's
        default sampling), read per request by :meth:`~inference_server.prediction_log.
        capture.Capture.admit` (a change of the sampling reloads the version)."""
        self.stats = ModelStatistics(name=name, version=self.version_str)
        self.recorder = hooks.recorder(name, self.version_str)
        self.reference: ReferenceProfile | None = None
        self.inflight = 0
        self.retired = False
        self._drained = asyncio.Event()
        self._answers = answers
        batching = config.batching
        batchable = all(s.shape and s.shape[0] == -1 for s in self.signature.inputs)
        self.batcher: MicroBatcher | None = None
        self.submit: Callable[[list[np.ndarray], int, object], Awaitable[list[np.ndarray]]]
        self.enqueue: Callable[
            [list[np.ndarray], int, bool, object], asyncio.Future[list[np.ndarray]]
        ]
        if batching.enabled and batchable:
            self.batcher = MicroBatcher(
                model.run,
                max_batch_size=batching.max_batch_size,
                max_queue_delay_us=batching.max_queue_delay_us,
                linger_us=batching.linger_us,
                max_queue_size=batching.max_queue_size,
                queue_timeout_us=batching.queue_timeout_us,
                observer=self._on_batch,
                inline=model.run_sync,
                inline_max_rows=inline_rows(batching.inline_max_us, model.row_cost_ns),
                adaptive=batching.adaptive,
                tap=None if answers is None else functools.partial(answers, self),
            )
            self.submit = self.batcher.submit
            self.enqueue = self.batcher.enqueue
        else:
            self.submit = self._run_direct
            self.enqueue = self._start_direct

    @classmethod
    async def load(
        cls,
        name: str,
        entry: VersionEntry,
        config: ModelConfig,
        hooks: VersionHooks,
        *,
        default_threads: int = 1,
        answers: AnswerTap | None = None,
    ) -> LoadedVersion:
        """Load and warm a version in a worker thread, then start its batcher.

        The version's ``reference.json`` (drift reference profile), when present, is read
        here too: the drift sketches bin on its edges (:mod:`inference_server.drift`).

        Raises:
            InvalidArgument: the file is not a loadable ONNX model, or its reference.json is
                malformed (the reason names the file).
        """
        threads = config.intra_op_num_threads or default_threads
        reference = await asyncio.to_thread(read_reference, entry.path.parent)
        model = await asyncio.to_thread(OnnxModel.load, entry.path, intra_op_num_threads=threads)
        handle = cls(name, entry.version, model, config, hooks, answers)
        handle.reference = reference
        if handle.batcher is not None:
            handle.batcher.start()
        log.info(
            "%s v%d: batch plan %s; single row %.1f us (slowest %.1f us at load); inline up to "
            "%d row(s) when idle",
            name, entry.version, model.plan.label, model.row_cost_ns / 1e3,
            model.row_cost_max_ns / 1e3,
            inline_rows(config.batching.inline_max_us, model.row_cost_ns),
        )  # fmt: skip
        return handle

    async def _run_direct(
        self, arrays: list[np.ndarray], rows: int, tag: object = None
    ) -> list[np.ndarray]:
        start = time.monotonic_ns()
        outputs = await self.model.run(arrays)
        if self._answers is not None:  # NOTE: guarded as the batcher's: the answer goes out
            guarded(TAP_FAILED, self._answers, self, [tag], [rows], arrays, outputs)
        guarded(OBSERVER_FAILED, self._on_batch, rows, NO_WAIT, time.monotonic_ns() - start)
        return outputs

    def _start_direct(
        self, arrays: list[np.ndarray], rows: int, busy: bool = False, tag: object = None
    ) -> asyncio.Future[list[np.ndarray]]:
        return asyncio.ensure_future(self._run_direct(arrays, rows, tag))

    def _on_batch(self, rows: int, queue_waits_ns: Sequence[int], compute_ns: int) -> None:
        stats = self.stats
        stats.inference_count += rows
        stats.execution_count += 1
        stats.queue_ns += sum(queue_waits_ns)
        stats.compute_ns += compute_ns
        stats.last_inference_ms = int(time.time() * 1000)
        self.recorder.batch(rows, queue_waits_ns, compute_ns)

    def release(self) -> None:
        """End one request's use of this version (pairs with ``inflight += 1``)."""
        self.inflight -= 1
        if self.retired and self.inflight == 0:
            self._drained.set()

    def retire(self) -> asyncio.Task[None]:
        """Take no new requests; returns the task that closes the version once drained."""
        self.retired = True
        if self.inflight == 0:
            self._drained.set()
        return asyncio.get_running_loop().create_task(self._close_when_drained())

    async def _close_when_drained(self) -> None:
        await self._drained.wait()
        if self.batcher is not None:
            await self.batcher.close()
        self.model.close()
