"""Loaded model versions: loading off the loop, atomic swaps, reference counts, states.

Design:
* Each model has a :class:`ModelSlot` whose ``by_key`` dict maps the version text (and
  ``None`` for "no version named") to a :class:`LoadedVersion`. Requests resolve through that
  dict; a reload builds a new dict and replaces it in one assignment, so a request sees either
  the old or the new set, never a mix. No locks on the request path (one event loop).
* A new version is loaded and warmed in a worker thread (:meth:`OnnxModel.load`), and only
  then swapped in. A version that leaves the set is *retired*: it stops receiving new
  requests, its in-flight requests finish on it (reference count), and it is closed when the
  count reaches zero.
* A changed ``config.json`` reloads a version only if its serving settings changed (batching,
  ``allow_non_finite``, ``max_rows_per_request``, threads, log sampling); a new default version,
  policy or routes just republish the set.
* A failed load never removes what serves: retired versions are only those outside the
  policy's wanted set *and* only once a wanted version is ready; the error is kept as the
  version's state reason (metadata, readiness, repository index) and logged. A failure is not
  retried until the file's fingerprint changes (a hand copy that finishes, a new publish).
* The default version (requests naming none) is ``config.default_version`` when it is ready,
  else the previous default while it still serves, else the highest ready version. With
  ``routes`` in config.json, requests naming no version are split across the routed versions
  instead (:mod:`inference_server.routing`); the router is rebuilt with the version map.
* Self-clearing states answer with retryable codes: no version ready yet -> UNAVAILABLE.
* Syncing one model with the disk is serialised per model by an ``asyncio.Lock`` (control
  path only).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from inference_server.loaded_version import AnswerTap, LoadedVersion, VersionHooks
from inference_server.routing import Router
from modelyard.errors import ModelyardError, NotFound, Unavailable
from modelyard.model_repository import (
    ModelConfig,
    VersionEntry,
    model_directory,
    parse_version_dir,
    read_model_config,
    scan_model,
    select_versions,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from pathlib import Path

    from modelyard.enums import ModelVariant
    from modelyard.model_repository import BatchingConfig, Route
    from modelyard.models import Scalar

log = logging.getLogger(__name__)

READY, LOADING, UNAVAILABLE, UNLOADING = "READY", "LOADING", "UNAVAILABLE", "UNLOADING"


class VersionState(msgspec.Struct, kw_only=True):
    """Load state of one version as the repository index reports it."""

    state: str
    reason: str = ""
    fingerprint: tuple[int, int] = (0, 0)


class Routed(NamedTuple):
    """The version that answers a request naming none, its A/B role, its shadow versions."""

    handle: LoadedVersion
    variant: ModelVariant | None = None
    shadows: Sequence[LoadedVersion] = ()


class ModelSlot:
    """Everything the server holds for one model name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.config = ModelConfig()
        self.by_key: dict[str | None, LoadedVersion] = {}
        self.router: Router | None = None
        self.ready: dict[int, LoadedVersion] = {}
        self.states: dict[int, VersionState] = {}
        self.error = ""
        self.lock = asyncio.Lock()


def _same_serving(old: ModelConfig, new: ModelConfig) -> bool:
    """Whether a loaded version can keep running under ``new`` (default/policy changes can)."""
    return (
        old.batching == new.batching
        and old.allow_non_finite == new.allow_non_finite
        and old.max_rows_per_request == new.max_rows_per_request
        and old.intra_op_num_threads == new.intra_op_num_threads
        # NOTE: the log's sampling is read from the version's config on the request path.
        and old.prediction_log == new.prediction_log
    )


class ModelManager:
    """Owns the loaded versions of every model of one repository (``answers``: where their
    session runs hand the answered requests, :class:`~inference_server.loaded_version.
    AnswerTap`)."""

    def __init__(
        self,
        repository: Path,
        hooks: VersionHooks,
        *,
        intra_op_num_threads: int = 1,
        default_batching: BatchingConfig | None = None,
        answers: AnswerTap | None = None,
    ) -> None:
        self.repository = repository
        self._hooks = hooks
        self._answers = answers
        self._default_batching = default_batching
        self._threads = intra_op_num_threads
        self._slots: dict[str, ModelSlot] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def resolve(self, name: str, version: str | None) -> LoadedVersion:
        """Return the version that answers a request, ignoring A/B routes (control path).

        Raises:
            NotFound: unknown model, or a version that is not loaded and not loading.
            Unavailable: the version (or any version) is still loading or failed to load.
        """
        return self._lookup(self._slot_of(name), version or None)

    def route(self, name: str, version: str | None, routing_key: Scalar | None) -> Routed:
        """Where a request goes (hot path): the version it names, else its A/B arm, else the
        default version; plus the shadow versions that also score it.

        Raises:
            NotFound: unknown model, or a version that is not loaded and not loading.
            Unavailable: the version (or any version) is still loading or failed to load.
        """
        slot = self._slot_of(name)
        router = slot.router
        if version or router is None:
            return Routed(self._lookup(slot, version or None))
        arm = router.pick(routing_key)
        shadows = router.shadows(routing_key)
        if arm is None:
            return Routed(self._lookup(slot, None), None, shadows)
        return Routed(arm.handle, arm.variant, shadows)

    def _slot_of(self, name: str) -> ModelSlot:
        slot = self._slots.get(name)
        if slot is None:
            raise NotFound("model", name)
        return slot

    def _lookup(self, slot: ModelSlot, version: str | None) -> LoadedVersion:
        handle = slot.by_key.get(version)
        return handle if handle is not None else self._missing(slot, version)

    def _missing(self, slot: ModelSlot, version: str | None) -> LoadedVersion:
        if version is None:
            reasons = [
                f"version {v}: {s.reason}" for v, s in sorted(slot.states.items()) if s.reason
            ]
            detail = "; ".join([slot.error, *reasons] if slot.error else reasons)
            detail = f" ({detail})" if detail else ""
            raise Unavailable(f"model {slot.name!r} has no version ready yet{detail}; retry")
        number = parse_version_dir(version)
        state = slot.states.get(number) if number is not None else None
        if state is None or state.state == UNLOADING:
            raise NotFound("model", slot.name, version=version)
        detail = f": {state.reason}" if state.reason else ""
        raise Unavailable(f"model {slot.name!r} version {version} is {state.state}{detail}; retry")

    def slot(self, name: str) -> ModelSlot:
        """Return a model's slot.

        Raises:
            NotFound: the model is not known to the server.
        """
        slot = self._slots.get(name)
        if slot is None:
            raise NotFound("model", name)
        return slot

    def slots(self) -> list[ModelSlot]:
        """All known models, by name."""
        return [self._slots[n] for n in sorted(self._slots)]

    async def sync(self, name: str, only: Collection[int] | None = None) -> ModelSlot | None:
        """Bring one model in line with the repository on disk; None if it has no directory.

        ``only`` pins the versions to load (those of them still on disk) instead of the
        config's version policy: every worker of a server loads the same versions.

        Raises:
            InvalidArgument: ``name`` breaks the repository's naming rule or resolves outside
                the repository (checked before any file is touched).
        """
        model_dir = await asyncio.to_thread(model_directory, self.repository, name)
        if not await asyncio.to_thread(model_dir.is_dir):
            await self.unload(name)
            return None
        slot = self._slots.setdefault(name, ModelSlot(name))
        async with slot.lock:
            try:
                config = await asyncio.to_thread(
                    read_model_config, model_dir, default_batching=self._default_batching
                )
            except ModelyardError as exc:
                slot.error = str(exc)
                log.error("model %s: config.json rejected: %s", name, exc)
                return slot
            slot.error = ""
            available = await asyncio.to_thread(scan_model, model_dir)
            if only is None:
                wanted = select_versions(available, config.version_policy)
            else:
                wanted = sorted(v for v in available if v in only)
            for version in wanted:
                await self._ensure_loaded(slot, config, available[version])
            self._publish(slot, config, wanted, set(available))
        return slot

    async def _ensure_loaded(
        self, slot: ModelSlot, config: ModelConfig, entry: VersionEntry
    ) -> None:
        state = slot.states.get(entry.version)
        loaded = slot.ready.get(entry.version)
        if (
            state is not None
            and state.fingerprint == entry.fingerprint
            and state.state != LOADING
            and (loaded is None or _same_serving(loaded.config, config))
        ):
            return  # loaded already (same file and settings), or failed on exactly this file
        slot.states[entry.version] = VersionState(state=LOADING, fingerprint=entry.fingerprint)
        self._hooks.event(slot.name, entry.version, "load_started")
        try:
            handle = await LoadedVersion.load(
                slot.name,
                entry,
                config,
                self._hooks,
                default_threads=self._threads,
                answers=self._answers,
            )
        except ModelyardError as exc:
            self._record_failure(slot, entry, str(exc))
            return
        except Exception as exc:  # a model file may break onnxruntime in any way
            self._record_failure(slot, entry, f"{type(exc).__name__}: {exc}")
            return
        previous = slot.ready.get(entry.version)
        slot.ready[entry.version] = handle
        slot.states[entry.version] = VersionState(state=READY, fingerprint=entry.fingerprint)
        self._hooks.event(slot.name, entry.version, "loaded")
        log.info("model %s version %d loaded from %s", slot.name, entry.version, entry.path)
        if previous is not None:
            self._retire(previous)

    def _record_failure(self, slot: ModelSlot, entry: VersionEntry, reason: str) -> None:
        was_ready = entry.version in slot.ready
        slot.states[entry.version] = VersionState(
            state=READY if was_ready else UNAVAILABLE, reason=reason, fingerprint=entry.fingerprint
        )
        self._hooks.event(slot.name, entry.version, "load_failed")
        log.error("model %s version %d failed to load: %s", slot.name, entry.version, reason)

    def _publish(
        self, slot: ModelSlot, config: ModelConfig, wanted: list[int], on_disk: set[int]
    ) -> None:
        """Swap in the new version set and retire what left it.

        A version removed from disk is retired at once; one still on disk but no longer wanted
        only once a wanted version serves (so a failed load never leaves the model empty).
        """
        keep_unwanted = not any(v in slot.ready for v in wanted)
        for version in list(slot.ready):
            if version not in wanted and (version not in on_disk or not keep_unwanted):
                self._retire(slot.ready.pop(version))
        for version in [v for v in slot.states if v not in wanted and v not in slot.ready]:
            del slot.states[version]
        previous_default = slot.by_key.get(None)
        by_key: dict[str | None, LoadedVersion] = {str(v): h for v, h in slot.ready.items()}
        default = by_key.get(str(config.default_version)) if config.default_version else None
        if default is None and previous_default is not None and not previous_default.retired:
            default = previous_default if config.default_version else None
        if default is None and slot.ready:
            default = slot.ready[max(slot.ready)]
        if default is not None:
            by_key[None] = default
        slot.config = config
        slot.by_key = by_key
        slot.router = Router.build(config.routes, slot.ready)

    def set_routes(self, name: str, routes: Sequence[Route]) -> None:
        """Route a model's requests by ``routes`` from the next request on (no reload).

        Raises:
            NotFound: the model is not loaded.
        """
        slot = self.slot(name)
        slot.config = msgspec.structs.replace(slot.config, routes=tuple(routes))
        slot.router = Router.build(slot.config.routes, slot.ready)

    def _retire(self, handle: LoadedVersion) -> None:
        self._hooks.event(handle.name, handle.version, "unloaded")
        log.info("model %s version %d retired", handle.name, handle.version)
        task = handle.retire()
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def unload(self, name: str) -> None:
        """Stop serving every version of a model; in-flight requests finish first."""
        slot = self._slots.pop(name, None)
        if slot is None:
            return
        slot.by_key = {}
        slot.router = None
        for handle in slot.ready.values():
            self._retire(handle)
        slot.ready.clear()

    async def close(self) -> None:
        """Unload everything and wait until every version has drained and closed."""
        for name in list(self._slots):
            await self.unload(name)
        while self._closing:
            await asyncio.gather(*self._closing)
