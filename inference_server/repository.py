"""Watching the model repository: startup load, polling, explicit load/unload, the index.

Modes (Triton's ``--model-control-mode``): ``poll`` loads every model at startup and then
rescans the repository every ``poll_interval_s`` seconds, loading new or changed versions and
retiring removed ones; ``explicit`` and ``none`` load every model at startup and change only
on the load/unload API (``none`` refuses it). The layout and the completeness rule are
:mod:`modelyard.model_repository`'s; scans run in a worker thread so the event loop never
waits on the file system. A model unloaded through the API stays unloaded (polling skips it)
until it is loaded again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Literal

from inference_server.core.types import RepositoryModel
from inference_server.model_manager import READY, UNAVAILABLE
from modelyard.errors import FailedPrecondition, NotFound
from modelyard.model_repository import check_model_name, list_models, scan_model

if TYPE_CHECKING:
    from collections.abc import Collection

    from inference_server.model_manager import ModelManager, ModelSlot

log = logging.getLogger(__name__)

ControlMode = Literal["poll", "explicit", "none"]


class RepositoryWatcher:
    """Keeps a :class:`ModelManager` in line with its repository directory."""

    def __init__(
        self, manager: ModelManager, *, mode: ControlMode = "poll", poll_interval_s: float = 2.0
    ) -> None:
        self._manager = manager
        self._mode = mode
        self._interval = poll_interval_s
        self._unloaded: set[str] = set()
        self._failing: dict[str, str] = {}
        """What failed at the last poll (a model, the listing) and how (logged once)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, scan: bool = True) -> None:
        """Load every model of the repository, then start polling (poll mode).

        ``scan=False`` skips the startup load: a worker of a multi-process server in
        explicit mode loads exactly the server's desired state instead
        (:mod:`inference_server.admin`).
        """
        if scan:
            await self.poll_once()
        if self._mode == "poll":
            self._task = asyncio.get_running_loop().create_task(self._poll_forever())

    async def stop(self) -> None:
        """Stop polling (loaded models stay; the manager closes them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def poll_once(self) -> None:
        """Sync every model on disk and every loaded model with the repository once.

        A model whose sync fails (its folder became a symlink out of the repository, a flaky
        mount) is logged -- once per distinct error, and again when it recovers -- and the
        others are synced all the same; the next poll tries it again.
        """
        on_disk = await asyncio.to_thread(list_models, self._manager.repository)
        names = (set(on_disk) | {s.name for s in self._manager.slots()}) - self._unloaded
        for name in sorted(names):
            what = f"model {name!r}"
            try:
                await self._manager.sync(name)
            except Exception as exc:
                self._poll_failed(what, exc)
            else:
                if self._failing.pop(what, None) is not None:
                    log.info("repository poll: %s syncs again", what)

    def _poll_failed(self, what: str, exc: Exception) -> None:
        """Log a failed poll of ``what``, unless it failed the same way at the last poll."""
        message = f"{type(exc).__name__}: {exc}"
        if self._failing.get(what) != message:
            self._failing[what] = message
            log.error("repository poll: %s failed (%s); retried every poll", what, message)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll_once()
            except Exception as exc:  # NOTE: listing the repository failed (a flaky mount):
                # keep serving and polling; a poll that ends here must not end the polling
                self._poll_failed("listing the repository", exc)

    def check_control(self) -> None:
        """Refuse load/unload when model control is off.

        Raises:
            FailedPrecondition: ``--model-control-mode none``.
        """
        if self._mode == "none":
            raise FailedPrecondition("model control is disabled (--model-control-mode none)")

    async def load(
        self, name: str, versions: Collection[int] | None = None, *, checked: bool = True
    ) -> ModelSlot:
        """Load or reload one model now (``versions``: exactly these, else by its policy).

        ``checked=False`` applies a decision taken already (the admin fan-out checked the
        control mode once, before every worker applies it).

        Raises:
            InvalidArgument: the name breaks the repository's naming rule.
            NotFound: no such model directory, or no complete version in it.
            FailedPrecondition: model control is disabled.
        """
        check_model_name(name)
        if checked:
            self.check_control()
        known = name in {s.name for s in self._manager.slots()}
        slot = await self._manager.sync(name, versions)
        if slot is None:
            raise NotFound("model", name)
        if not known and not slot.states and not slot.ready and not slot.error:
            # NOTE: a folder with no complete version is not a model: leave no index entry.
            await self._manager.unload(name)
            raise NotFound("model", name)
        self._unloaded.discard(name)
        return slot

    async def unload(self, name: str, *, checked: bool = True) -> None:
        """Unload one model; polling leaves it alone until it is loaded again.

        ``checked=False``: no control-mode check, and a model that is not loaded here is
        simply kept unloaded (a worker replaying the server's state).

        Raises:
            InvalidArgument: the name breaks the repository's naming rule.
            NotFound: the model is not loaded.
            FailedPrecondition: model control is disabled.
        """
        check_model_name(name)
        if checked:
            self.check_control()
            self._manager.slot(name)
        self._unloaded.add(name)
        await self._manager.unload(name)

    async def index(self, *, ready_only: bool = False) -> list[RepositoryModel]:
        """Every model in the repository with each version's state (Triton RepositoryIndex)."""
        repo = self._manager.repository
        on_disk = await asyncio.to_thread(list_models, repo)
        out: list[RepositoryModel] = []
        loaded = {s.name: s for s in self._manager.slots()}
        for name in sorted(set(on_disk) | set(loaded)):
            slot = loaded.get(name)
            if slot is None:
                versions = await asyncio.to_thread(scan_model, repo / name)  # listed: valid
                reason = "unloaded" if name in self._unloaded else "not loaded"
                out.extend(
                    RepositoryModel(name=name, version=str(v), state=UNAVAILABLE, reason=reason)
                    for v in sorted(versions)
                )
                continue
            if not slot.states:
                out.append(
                    RepositoryModel(
                        name=name,
                        version="",
                        state=UNAVAILABLE,
                        reason=slot.error or "no complete version",
                    )
                )
            for version, state in sorted(slot.states.items()):
                out.append(
                    RepositoryModel(
                        name=name, version=str(version), state=state.state, reason=state.reason
                    )
                )
        if ready_only:
            out = [m for m in out if m.state == READY]
        return out
