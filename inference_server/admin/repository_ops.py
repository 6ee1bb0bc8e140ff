"""The repository operations on the fan-out: load, unload, and reading every worker's state.

* ``repository.load`` -- ``prepare`` (once, in the serial section) checks the control mode
  and, unless the server polls, *pins* the versions the model's version policy selects on
  disk now; every worker then loads exactly those (never what its own scan would find a
  moment later), and the pinned load becomes the model's desired state (``model/<name>``).
  In poll mode nothing is pinned: workers follow the disk at every poll anyway.
* ``repository.unload`` -- the model is retired on every worker and stays unloaded there,
  and in any worker started later.
* ``repository.workers`` -- each worker's pid and ready versions per model (read only).

From the moment a load or unload call returns, every worker has swapped its version map, so
no request sent afterwards is answered by a replaced or unloaded version (in-flight requests
finish on the version they started on).
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import msgspec

from inference_server.admin.fanout import Operation, Prepared, encode
from inference_server.admin.wire import Entry
from modelyard.errors import ConfigurationError, FailedPrecondition, NotFound
from modelyard.model_repository import (
    check_model_name,
    list_models,
    model_directory,
    read_model_config,
    scan_model,
    select_versions,
)

if TYPE_CHECKING:
    from pathlib import Path

    from inference_server.admin.fanout import Fanout
    from inference_server.service import InferenceService
    from modelyard.model_repository import BatchingConfig

LOAD, UNLOAD, WORKERS = "repository.load", "repository.unload", "repository.workers"


class LoadRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Load ``name``; ``versions`` pins the versions (None: the model's version policy)."""

    name: str
    versions: tuple[int, ...] | None = None


class Loaded(msgspec.Struct, kw_only=True, frozen=True):
    """The versions ready after a load (the same in every worker)."""

    versions: list[int]


class UnloadRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Unload ``name``."""

    name: str


class WorkerState(msgspec.Struct, kw_only=True, frozen=True):
    """What one worker serves: its index, pid and the ready versions of each model."""

    worker: int
    pid: int
    models: dict[str, list[int]]


def pinned_versions(
    repo: Path, name: str, default_batching: BatchingConfig | None
) -> tuple[int, ...] | None:
    """The versions a load of ``name`` means now (its policy over the complete versions).

    None when its config.json is invalid: then each worker reports that error itself.

    Raises:
        InvalidArgument: the name breaks the naming rule or leaves the repository.
        NotFound: no such model folder.
    """
    model_dir = model_directory(repo, name)
    if not model_dir.is_dir():
        raise NotFound("model", name)
    try:
        config = read_model_config(model_dir, default_batching=default_batching)
    except ConfigurationError:
        return None
    return tuple(select_versions(scan_model(model_dir), config.version_policy))


def initial_state(repo: Path, default_batching: BatchingConfig | None) -> dict[str, Entry]:
    """One pinned ``repository.load`` per model on disk: the state explicit workers start in."""
    state: dict[str, Entry] = {}
    for name in list_models(repo):
        versions = pinned_versions(repo, name, default_batching)
        state[f"model/{name}"] = Entry(
            op=LOAD, payload=encode(LoadRequest(name=name, versions=versions))
        )
    return state


def _same(results: list[Loaded]) -> Loaded:
    if any(r.versions != results[0].versions for r in results):
        raise FailedPrecondition(
            f"workers serve different versions: {[r.versions for r in results]}"
        )
    return results[0]


def register_repository_ops(
    fanout: Fanout,
    service: InferenceService,
    *,
    pin: bool,
    default_batching: BatchingConfig | None = None,
) -> None:
    """Register load, unload and workers on ``fanout`` (``pin``: explicit/none control mode)."""
    watcher, manager = service.watcher, service.manager

    async def prepare_load(request: LoadRequest) -> Prepared[LoadRequest]:
        name = check_model_name(request.name)
        watcher.check_control()
        versions = None
        if pin:
            versions = await asyncio.to_thread(
                pinned_versions, manager.repository, name, default_batching
            )
        return Prepared(LoadRequest(name=name, versions=versions), f"model/{name}")

    async def load(request: LoadRequest) -> Loaded:
        await service.load_model(request.name, request.versions, checked=False)
        return Loaded(versions=sorted(manager.slot(request.name).ready))

    async def prepare_unload(request: UnloadRequest) -> Prepared[UnloadRequest]:
        check_model_name(request.name)
        watcher.check_control()
        manager.slot(request.name)
        return Prepared(request, f"model/{request.name}")

    async def unload(request: UnloadRequest) -> bool:
        await watcher.unload(request.name, checked=False)
        return True

    async def workers(_: None) -> WorkerState:
        models = {slot.name: sorted(slot.ready) for slot in manager.slots()}
        return WorkerState(worker=fanout.worker, pid=os.getpid(), models=models)

    fanout.register(Operation(LOAD, LoadRequest, Loaded, load, _same, prepare_load))
    fanout.register(Operation(UNLOAD, UnloadRequest, bool, unload, all, prepare_unload))
    fanout.register(Operation(WORKERS, None, WorkerState, workers, list))
