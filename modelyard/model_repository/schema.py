"""The per-model ``config.json`` schema: version policy, batching, A/B routes, log sampling.

Shapes only (msgspec Structs decoded with unknown keys rejected); reading and writing the file
is :mod:`modelyard.model_repository.config_file`, the batching-defaults rule is described in
:mod:`modelyard.model_repository`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from modelyard.enums import ModelVariant

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class ConfigStruct(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of the config.json shapes: frozen, keyword-only, unknown keys rejected."""


class VersionPolicy(ConfigStruct, frozen=True):
    """Which complete versions of a model are loaded.

    Attributes:
        kind: ``latest`` (the ``latest_n`` highest), ``all``, or ``specific`` (``versions``).
        latest_n: how many of the highest versions ``latest`` keeps.
        versions: the versions ``specific`` keeps.
    """

    kind: Literal["latest", "all", "specific"] = "latest"
    latest_n: PositiveInt = 1
    versions: tuple[PositiveInt, ...] = ()


class BatchingConfig(ConfigStruct, frozen=True):
    """Dynamic batching of one model's versions (Triton's ``dynamic_batching``).

    In ``config.json`` every key is optional; one left out takes the server's setting
    (:func:`read_model_config`). The defaults here are the server's defaults
    (``ServerSettings`` reads them from this class).

    Attributes:
        enabled: off means every request runs the session on its own.
        max_batch_size: most rows in one session run.
        max_queue_delay_us: how long the *oldest* queued request may wait for more rows
            (a cap: batches usually leave earlier, full or after ``linger_us`` of silence).
            A batcher that is not under load (no request found the session busy in the last
            100 ms) runs a request at once, so low load sees no added latency; one under load
            waits only while the worker's core has no idle time (otherwise a batch is what
            queued while the previous one ran, sent as soon as the session is free).
        linger_us: under load on a saturated core, dispatch once no request arrived for this
            long (0: off).
            The defaults favour throughput under saturation; ``max_queue_delay_us=0`` with
            ``linger_us=0`` favours latency at moderate load (docs/architecture.md).
        max_queue_size: queued requests beyond this are refused with RESOURCE_EXHAUSTED.
        queue_timeout_us: a request still queued after this long fails with
            DEADLINE_EXCEEDED; 0 waits without limit.
        inline_max_us: a request reaching an idle batcher runs on the event loop itself
            (no hand-off to the session thread) when its rows times the version's single-row
            cost measured at load is at most this; 0 always hands off.
        adaptive: under load, wait for fuller batches only while the worker's core has no
            idle time (``inference_server/saturation.py``); false waits whenever under load,
            the rule before issue 21 (throughput first, whatever the latency cost).
    """

    enabled: bool = True
    max_batch_size: PositiveInt = 64
    max_queue_delay_us: Annotated[int, msgspec.Meta(ge=0)] = 10_000
    linger_us: Annotated[int, msgspec.Meta(ge=0)] = 1000
    max_queue_size: PositiveInt = 4096
    queue_timeout_us: Annotated[int, msgspec.Meta(ge=0)] = 10_000_000
    inline_max_us: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 100
    adaptive: bool = True


class Route(ConfigStruct, frozen=True):
    """One arm of an A/B route: requests naming no version are split across the arms.

    Attributes:
        version: the version this arm sends requests to.
        weight: control/treatment: relative share of the requests; shadow: the fraction
            (0..1) of requests also scored on this version, whose answers are never returned.
        variant: the arm's role in the test.
    """

    version: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
    weight: Annotated[float, msgspec.Meta(ge=0.0)]
    variant: ModelVariant = ModelVariant.CONTROL


class LogSampling(ConfigStruct, frozen=True):
    """Which answered requests of a model the prediction log records (all rows of each).

    The default records every request. ``every`` records one request in N (per worker, in
    arrival order); ``share`` records that fraction at random; both together apply ``share``
    to every Nth request. ``enabled: false`` records nothing for this model.

    Attributes:
        enabled: record this model's answers at all.
        every: record every Nth request.
        share: record this fraction of requests (0..1).
    """

    enabled: bool = True
    every: PositiveInt = 1
    share: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0

    @property
    def records_all(self) -> bool:
        """Whether every request is recorded (the default).

        >>> LogSampling().records_all, LogSampling(every=2).records_all
        (True, False)
        >>> LogSampling(enabled=False).records_all, LogSampling(share=0.5).records_all
        (False, False)
        """
        return self.enabled and self.every == 1 and self.share >= 1.0


class ModelConfig(ConfigStruct, frozen=True):
    """Schema of ``<repo>/<model>/config.json``; every field is optional.

    Attributes:
        version_policy: which complete versions are loaded.
        default_version: the version that answers requests naming none; without it the
            highest loaded version answers.
        batching: dynamic batching settings; keys left out take the server's settings.
        routes: A/B arms for requests naming no version (empty: no routing).
        allow_non_finite: accept NaN/inf in float inputs (trees handle NaN as missing).
        max_rows_per_request: a request with more rows is refused with INVALID_ARGUMENT / 400
            (0: no limit beyond the server's message size limit).
        intra_op_num_threads: onnxruntime threads per session; None takes the server default.
        prediction_log: sampling of the prediction log (default: every request).
    """

    version_policy: VersionPolicy = VersionPolicy()
    default_version: PositiveInt | None = None
    batching: BatchingConfig = BatchingConfig()
    routes: tuple[Route, ...] = ()
    allow_non_finite: bool = False
    max_rows_per_request: Annotated[int, msgspec.Meta(ge=0)] = 0
    intra_op_num_threads: PositiveInt | None = None
    prediction_log: LogSampling = LogSampling()
