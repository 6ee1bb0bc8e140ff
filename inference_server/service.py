"""The transport-free inference service both protocol adapters call.

An adapter converts its wire message to :mod:`inference_server.core.types`, calls one method
here and converts the answer back; anything beyond conversion lives here. Errors are
:mod:`modelyard.errors` subclasses; each adapter maps their codes in one table.

Request path of :meth:`InferenceService.infer`: resolve the version (a dict lookup; the model
manager swaps versions atomically), count it in flight, check the requested outputs, validate
the inputs (one function for both protocols), submit to the version's batcher (or run the
session directly), pick the requested outputs. No logging and no locks on this path; metrics
go to pre-bound per-version recorders. With the prediction log on, the request id is settled
(the client's, else a fresh one returned in the answer) before shadows are scheduled. The
request's :class:`InferJob` rides with its inputs as the batcher's tag: each session run hands
its answered jobs, with the run's arrays, to the prediction log and the drift sketches once
(:mod:`inference_server.answers`), so nothing of either happens here per request.

The path is split in two so that a caller with many requests in flight need not hold a task
per request: :meth:`InferenceService.start_infer` does everything up to the batch queue
synchronously and returns an :class:`InferJob` holding the queue's future;
:meth:`~InferenceService.finish` awaits it and builds the answer. :meth:`~InferenceService.infer`
is the two in a row (with the batcher's idle fast path); the gRPC stream uses them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import msgspec

import modelyard
from inference_server.core.rows import result_from_outputs, rows_to_inputs
from inference_server.core.types import (
    InferRequest,
    InferResponse,
    PredictResult,
    RepositoryModel,
    ResponseOutput,
    ServerMetadata,
)
from inference_server.core.validation import validate_inputs
from inference_server.queries import ModelQueries
from inference_server.routing import ROUTING_KEY
from modelyard.enums import ModelVariant
from modelyard.errors import (
    DRAINING,
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    ModelyardError,
    NotFound,
    Unavailable,
)
from modelyard.prediction_log import VARIANT_NONE

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    import numpy as np

    from inference_server.core.rows import Row
    from inference_server.drift.book import SketchBook
    from inference_server.loaded_version import LoadedVersion, VersionHooks
    from inference_server.model_manager import ModelManager, Routed
    from inference_server.prediction_log import Capture
    from inference_server.repository import RepositoryWatcher

SHADOW = ModelVariant.SHADOW.value

EXTENSIONS = [
    "binary_tensor_data",
    "model_repository",
    "model_configuration",
    "statistics",
    "parameters",
]


class InferJob:
    """One request between :meth:`InferenceService.start_infer` and
    :meth:`~InferenceService.finish`: its version (counted in flight), validated inputs and
    pending outputs (the batcher's tag for the run that answers it)."""

    __slots__ = (
        "arrays",
        "handle",
        "logged",
        "outputs",
        "picks",
        "request",
        "rows",
        "start",
        "variant",
    )

    def __init__(
        self,
        handle: LoadedVersion,
        request: InferRequest,
        start: float,
        variant: str,
        logged: bool,
        picks: range | list[int],
        arrays: list[np.ndarray],
        rows: int,
    ) -> None:
        self.handle = handle
        self.request = request
        self.start = start
        self.variant = variant
        self.logged = logged
        self.picks = picks
        self.arrays = arrays
        self.rows = rows
        self.outputs: Awaitable[list[np.ndarray]]


class InferenceService(ModelQueries):
    """Inference, health, metadata and repository control over a model manager.

    Health, metadata, configuration and statistics queries are :class:`ModelQueries`' (they
    only read the manager); this class adds inference and repository control.
    """

    def __init__(
        self,
        manager: ModelManager,
        watcher: RepositoryWatcher,
        hooks: VersionHooks,
        *,
        server_name: str = "modelyard",
        sketches: SketchBook | None = None,
        log: Capture | None = None,
    ) -> None:
        self._manager = manager
        self._log = log
        self._watcher = watcher
        self._hooks = hooks
        self._metadata = ServerMetadata(
            name=server_name, version=modelyard.__version__, extensions=EXTENSIONS
        )
        self.ready = False
        self.draining = False
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.sketches = sketches

    async def infer(self, request: InferRequest) -> InferResponse:
        """Run one inference request on the version it resolves (or is routed) to.

        Raises:
            NotFound: unknown model or version.
            InvalidArgument: the inputs or requested outputs do not fit the model.
            Unavailable: no version ready yet, or the server is draining (retry).
            ResourceExhausted: the version's batch queue is full (retry).
            DeadlineExceeded: the request waited too long in the batch queue.
        """
        start = time.perf_counter()
        routed = self._route(request, start)
        return await self.finish(self._begin(routed, request, start, submit=True))

    def start_infer(self, request: InferRequest, busy: bool = False) -> InferJob:
        """Resolve, check and queue one request now; :meth:`finish` awaits its answer.

        For callers with many requests in flight (a gRPC stream): the request joins its
        version's batch queue at once and the job holds a future, so no task is needed per
        request. Every job must be passed to :meth:`finish` or :meth:`abandon`. ``busy``: the
        caller has other requests unanswered, which counts as load for the batcher.

        Raises:
            NotFound, InvalidArgument, Unavailable, ResourceExhausted: as :meth:`infer`.
        """
        start = time.perf_counter()
        return self._begin(self._route(request, start), request, start, submit=False, busy=busy)

    def _route(self, request: InferRequest, start: float) -> Routed:
        try:
            if self.draining:
                raise Unavailable(DRAINING)
            return self._manager.route(
                request.model_name, request.model_version, request.parameters.get(ROUTING_KEY)
            )
        except ModelyardError as exc:
            self._hooks.failure(
                request.model_name,
                request.model_version or "",
                exc.code.value,
                time.perf_counter() - start,
            )
            raise

    def _begin(
        self,
        routed: Routed,
        request: InferRequest,
        start: float,
        *,
        submit: bool,
        busy: bool = False,
    ) -> InferJob:
        logged = False
        if self._log is not None:
            try:
                logged = self._log.admit(request, routed.handle)
            except ModelyardError as exc:
                self._fail(routed.handle, exc, start)
                raise
        if routed.shadows:
            self._score_in_shadow(routed.shadows, request, logged)
        variant = VARIANT_NONE if routed.variant is None else routed.variant.value
        return self._queue(routed.handle, request, start, variant, logged, submit=submit, busy=busy)

    def _queue(
        self,
        handle: LoadedVersion,
        request: InferRequest,
        start: float,
        variant: str,
        logged: bool,
        *,
        submit: bool,
        busy: bool = False,
    ) -> InferJob:
        """Validate and hand the inputs to the version (``submit``: a coroutine to await,
        with the batcher's idle fast path; else queued now, a future)."""
        handle.inflight += 1
        try:
            picks = self._output_picks(request, handle)
            arrays, rows = validate_inputs(request, handle.signature, handle.limits)
            job = InferJob(handle, request, start, variant, logged, picks, arrays, rows)
            job.outputs = (
                handle.submit(arrays, rows, job)
                if submit
                else handle.enqueue(arrays, rows, busy, job)
            )
        except BaseException as exc:
            self._fail(handle, exc, start)
            handle.release()
            raise
        return job

    async def finish(self, job: InferJob) -> InferResponse:
        """Await a job's outputs and build its answer (statistics; the run already handed it to
        the drift sketches and the prediction log).

        Raises:
            ResourceExhausted, DeadlineExceeded, Unavailable: the batch queue's refusal.
        """
        handle = job.handle
        try:
            outputs = await job.outputs
        except BaseException as exc:
            self._fail(handle, exc, job.start)
            raise
        finally:
            handle.release()
        elapsed = time.perf_counter() - job.start
        stats = handle.stats
        stats.success_count += 1
        stats.success_ns += int(elapsed * 1e9)
        handle.recorder.request(elapsed)
        request = job.request
        datatypes = handle.output_datatypes
        names = handle.signature.outputs
        return InferResponse(
            model_name=request.model_name,
            model_version=handle.version_str,
            id=request.id,
            outputs=[
                ResponseOutput(
                    name=names[i].name,
                    datatype=datatypes[i],
                    shape=outputs[i].shape,
                    data=outputs[i],
                )
                for i in job.picks
            ],
            parameters=request.parameters,
        )

    def abandon(self, job: InferJob) -> None:
        """Give up a job whose answer nobody will read (its stream ended): counted failed."""
        outputs = job.outputs
        if isinstance(outputs, asyncio.Future):
            outputs.cancel()
        elif asyncio.iscoroutine(outputs):
            outputs.close()
        self._fail(job.handle, asyncio.CancelledError(), job.start)
        job.handle.release()

    def _score_in_shadow(
        self, shadows: Sequence[LoadedVersion], request: InferRequest, logged: bool
    ) -> None:
        """Score a copy of the request on each shadow version; nobody awaits the answer."""
        start = time.perf_counter()
        for handle in shadows:
            shadow = self._infer_on(handle, request, start, logged)
            task = asyncio.get_running_loop().create_task(self._shadow(shadow))
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _infer_on(
        self, handle: LoadedVersion, request: InferRequest, start: float, logged: bool
    ) -> InferResponse:
        return await self.finish(self._queue(handle, request, start, SHADOW, logged, submit=True))

    async def _shadow(self, scoring: Awaitable[InferResponse]) -> None:
        # NOTE: its failures are counted on the shadow version (statistics, failure metrics)
        # by _infer_on and go no further: a shadow never affects the caller.
        with contextlib.suppress(Exception):
            await scoring

    def _output_picks(self, request: InferRequest, handle: LoadedVersion) -> range | list[int]:
        if request.outputs is None:
            return range(len(handle.output_datatypes))
        index = handle.output_index
        picks = []
        for wanted in request.outputs:
            i = index.get(wanted.name)
            if i is None:
                raise InvalidArgument(
                    f"unknown output {wanted.name!r}; the model gives {list(index)}"
                )
            picks.append(i)
        return picks

    def _fail(self, handle: LoadedVersion, exc: BaseException, start: float) -> None:
        elapsed = time.perf_counter() - start
        handle.stats.fail_count += 1
        handle.stats.fail_ns += int(elapsed * 1e9)
        code = exc.code if isinstance(exc, ModelyardError) else ErrorCode.INTERNAL
        self._hooks.failure(handle.name, handle.version_str, code.value, elapsed)

    def record_failure(self, model_name: str, model_version: str, error: ModelyardError) -> None:
        """Count a request an adapter refused before :meth:`infer` (undecodable tensors)."""
        self._hooks.failure(model_name, model_version, error.code.value, 0.0)

    def sole_model(self) -> str:
        """The model a request that names none goes to: the only one the server knows.

        Raises:
            InvalidArgument: the server knows no model, or several (the message lists them).
        """
        names = [slot.name for slot in self._manager.slots()]
        if len(names) == 1:
            return names[0]
        known = ", ".join(names) if names else "none"
        raise InvalidArgument(f"name the model (?model=NAME); models served: {known}")

    async def predict_rows(
        self,
        model_name: str | None,
        rows: Sequence[Row],
        version: str | None = None,
        routing_key: str | None = None,
    ) -> PredictResult:
        """Score rows given as feature objects or value lists (``/predict``).

        Args:
            model_name: the model; ``None`` means the only model served (:meth:`sole_model`).
            rows: feature-name objects or value lists in the model's feature order.
            version: a version; ``None`` means the model's default version, or its A/B route.
            routing_key: keeps a caller on one A/B arm (:mod:`inference_server.routing`).

        Raises:
            NotFound, InvalidArgument, Unavailable, ResourceExhausted: as :meth:`infer`.
        """
        model_name = model_name or self.sole_model()
        if self.draining:
            raise Unavailable(DRAINING)
        routed = self._manager.route(model_name, version, routing_key)
        handle = routed.handle
        request = InferRequest(
            model_name=model_name,
            model_version=handle.version_str,
            inputs=rows_to_inputs(rows, handle.signature),
            parameters={} if routing_key is None else {ROUTING_KEY: routing_key},
            protocol="http",
        )
        response = await self.finish(self._begin(routed, request, time.perf_counter(), submit=True))
        outputs: list[np.ndarray] = [o.data for o in response.outputs]
        result = result_from_outputs(
            model_name=model_name,
            model_version=response.model_version,
            signature=handle.signature,
            task=handle.description.task,
            class_labels=handle.description.class_labels,
            outputs=outputs,
        )
        variant = None if routed.variant is None else routed.variant.value
        return msgspec.structs.replace(result, variant=variant, id=response.id)

    async def repository_index(self, *, ready_only: bool = False) -> list[RepositoryModel]:
        """Every model in the repository with the state of each version."""
        return await self._watcher.index(ready_only=ready_only)

    @property
    def manager(self) -> ModelManager:
        """The model manager (the admin operations of ``inference_server.admin`` use it)."""
        return self._manager

    @property
    def watcher(self) -> RepositoryWatcher:
        """The repository watcher (the admin operations use it)."""
        return self._watcher

    async def load_model(
        self, name: str, versions: Sequence[int] | None = None, *, checked: bool = True
    ) -> None:
        """Load (or reload) a model from the repository now (``versions``: exactly these).

        Raises:
            NotFound: no such model directory or no complete version in it.
            FailedPrecondition: a version could not be loaded (the message says why; versions
                that were serving keep serving).
        """
        slot = await self._watcher.load(name, versions, checked=checked)
        reasons = [f"version {v}: {s.reason}" for v, s in sorted(slot.states.items()) if s.reason]
        if slot.error:
            reasons.insert(0, slot.error)
        if reasons:
            serving = f"; still serving {sorted(slot.ready)}" if slot.ready else ""
            raise FailedPrecondition(
                f"model {name!r} failed to load: {'; '.join(reasons)}{serving}"
            )
        if not slot.ready:
            raise NotFound("model", name)

    async def unload_model(self, name: str) -> None:
        """Stop serving a model (in-flight requests finish); it stays unloaded until loaded.

        Raises:
            NotFound: the model is not loaded.
        """
        await self._watcher.unload(name)
