"""Health, metadata, configuration and statistics: the read-only queries of the service.

:class:`~inference_server.service.InferenceService` inherits them; they read the model manager
and never change it, so both transports answer them without touching the request path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference_server.core.types import (
    ModelConfiguration,
    ModelMetadata,
    ModelStatistics,
    ServerMetadata,
    TensorMetadata,
)
from modelyard.errors import NotFound, Unavailable

if TYPE_CHECKING:
    from collections.abc import Sequence

    from inference_server.model_manager import ModelManager, ModelSlot
    from modelyard.models import TensorSpec


def _tensors(specs: Sequence[TensorSpec], *, drop_batch: bool = False) -> list[TensorMetadata]:
    return [
        TensorMetadata(
            name=s.name, datatype=s.datatype, shape=list(s.shape[1:] if drop_batch else s.shape)
        )
        for s in specs
    ]


def _default(slot: ModelSlot) -> str:
    handle = slot.by_key.get(None)
    return handle.version_str if handle is not None else ""


class ModelQueries:
    """Health and metadata over a model manager (state set by the service)."""

    _manager: ModelManager
    _metadata: ServerMetadata
    ready: bool
    draining: bool

    def server_live(self) -> bool:
        """The process is up and its event loop answers."""
        return True

    def server_ready(self) -> bool:
        """Startup loading is done and the server is not draining."""
        return self.ready and not self.draining

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether a model (version) would answer a request now.

        Raises:
            NotFound: the model is not known to the server.
        """
        try:
            self._manager.resolve(name, version)
        except Unavailable:
            return False
        except NotFound:
            self._manager.slot(name)
            return False
        return not self.draining

    def server_metadata(self) -> ServerMetadata:
        """Server name, version and supported protocol extensions."""
        return self._metadata

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        """Inputs/outputs of the version a request would use, plus the last load errors.

        Raises:
            NotFound: unknown model or version.
            Unavailable: no version ready (the message carries the load error).
        """
        handle = self._manager.resolve(name, version)
        slot = self._manager.slot(name)
        desc = handle.description
        params = {"task": desc.task, "default_version": _default(slot)}
        errors = [f"version {v}: {s.reason}" for v, s in sorted(slot.states.items()) if s.reason]
        if errors or slot.error:
            params["error"] = "; ".join([slot.error, *errors] if slot.error else errors)
        if desc.signature.feature_names:
            params["feature_names"] = ",".join(desc.signature.feature_names)
        return ModelMetadata(
            name=name,
            versions=[str(v) for v in sorted(slot.ready)],
            inputs=_tensors(desc.signature.inputs),
            outputs=_tensors(desc.signature.outputs),
            parameters=params,
        )

    def model_config(self, name: str, version: str | None = None) -> ModelConfiguration:
        """The auto-completed configuration of a version (Triton ModelConfig).

        Raises:
            NotFound: unknown model or version.
            Unavailable: no version ready.
        """
        handle = self._manager.resolve(name, version)
        config, sig = handle.config, handle.signature
        batched = handle.batcher is not None or all(
            s.shape and s.shape[0] == -1 for s in sig.inputs
        )
        policy = config.version_policy
        return ModelConfiguration(
            name=name,
            max_batch_size=config.batching.max_batch_size if batched else 0,
            inputs=_tensors(sig.inputs, drop_batch=batched),
            outputs=_tensors(sig.outputs, drop_batch=batched),
            dynamic_batching=handle.batcher is not None,
            max_queue_delay_us=config.batching.max_queue_delay_us,
            max_queue_size=config.batching.max_queue_size,
            default_queue_timeout_us=config.batching.queue_timeout_us,
            version_policy=policy.kind,
            latest_n=policy.latest_n,
            specific_versions=list(policy.versions),
        )

    def model_statistics(self, name: str = "", version: str = "") -> list[ModelStatistics]:
        """Counters of the ready versions; "" selects every model / every version.

        Raises:
            NotFound: a named model or version that is not loaded.
        """
        slots = [self._manager.slot(name)] if name else self._manager.slots()
        stats = [
            h.stats
            for s in slots
            for v, h in sorted(s.ready.items())
            if not version or str(v) == version
        ]
        if version and not stats:
            raise NotFound("model", name, version=version)
        return stats
