"""Publication into the model repository the inference servers read.

The layout and the completeness rule are :mod:`modelyard.model_repository`'s: a version is
written into a dot-prefixed sibling and renamed into place, ``config.json`` is replaced
atomically. :meth:`RepositoryPublisher.sync` makes one model's folder match the registry:

1. every Staging and Production version is published (if not there yet);
2. ``config.json`` is rewritten with ``version_policy = specific(served versions)`` and
   ``default_version = the Production version`` (only those keys and stale routes are
   rewritten: every other key stays as written, batching included) —
   so a Staging version is served only when asked for by version, and archived versions are
   unloaded by the servers' version policy;
3. version folders no longer served are removed: renamed to a dot-name first (so they vanish
   atomically from a scan), then deleted.

The order makes every intermediate state valid for a server: a version is complete before
the config names it, and the config stops naming a version before its folder goes.
"""

from __future__ import annotations

import os
import secrets
import shutil
from typing import TYPE_CHECKING

from control_plane.registry.naming import check_name
from modelyard import model_repository as layout
from modelyard.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from pathlib import Path

    from control_plane.registry.artifacts import ArtifactStore


REFERENCE_FILENAME = "reference.json"


class RepositoryPublisher:
    """Writes registry state into a model repository folder.

    Args:
        root: the model repository (``settings.registry.model_repository``).
        artifacts: where the ONNX bytes come from.
        references: folder of reference profiles, ``<references>/<model>/<version>/
            reference.json`` (written by monitoring); a version's profile is published with
            it, in the same atomic rename, so a server loading the version finds both.
    """

    def __init__(self, root: Path, artifacts: ArtifactStore, references: Path | None = None):
        self.root = root
        self._artifacts = artifacts
        self.references = references

    def model_dir(self, name: str) -> Path:
        """The folder of one model, guaranteed to be a direct child of the repository.

        Raises:
            InvalidArgument: the name would leave the repository or hide the folder.
        """
        check_name(name)
        root = self.root.resolve()
        target = (root / name).resolve()
        if target.parent != root:
            raise InvalidArgument(f"model name {name!r} cannot be a repository folder")
        return target

    def sync(self, name: str, served: dict[int, str], production: int | None) -> None:
        """Make the repository's folder of ``name`` serve exactly ``served``.

        Args:
            name: model name.
            served: version -> artifact SHA-256 of every Staging and Production version.
            production: the Production version (the default), if any.
        """
        model_dir = self.model_dir(name)
        present = set(layout.scan_model(model_dir))
        for version, sha256 in sorted(served.items()):
            if version not in present:
                self._publish(model_dir, version, sha256)
        if served or model_dir.exists():
            self._write_config(model_dir, sorted(served), production)
        for version in sorted(present - set(served)):
            _remove_version(model_dir, version)

    def write_routes(self, name: str, routes: tuple[layout.Route, ...]) -> None:
        """Replace the A/B routes of ``name``'s ``config.json`` (atomically; other fields kept).

        Raises:
            InvalidArgument: the name would leave the repository.
            FailedPrecondition: the model has no folder in the repository (nothing served).
        """
        model_dir = self.model_dir(name)
        if not model_dir.is_dir():
            raise FailedPrecondition(f"model {name!r} has no served version in the repository")
        layout.write_model_routes(model_dir, routes)

    def _publish(self, model_dir: Path, version: int, sha256: str) -> None:
        stale = model_dir / str(version)
        if stale.exists():  # an incomplete leftover (no model.onnx): not a served version
            _remove_version(model_dir, version)
        files = {layout.MODEL_FILENAME: self._artifacts.path(sha256)}
        if self.references is not None:
            profile = self.references / model_dir.name / str(version) / REFERENCE_FILENAME
            if profile.is_file():
                files[REFERENCE_FILENAME] = profile
        layout.publish_version(self.root, model_dir.name, version, files)

    @staticmethod
    def _write_config(model_dir: Path, versions: list[int], production: int | None) -> None:
        # Only the keys the registry owns are rewritten: batching and the rest stay as the
        # operator wrote them (keys left out keep taking the inference server's settings).
        current = layout.read_model_config(model_dir)
        policy = layout.VersionPolicy(kind="specific", versions=tuple(versions))
        routes = tuple(r for r in current.routes if r.version in versions)
        layout.update_model_config(
            model_dir, {"version_policy": policy, "default_version": production, "routes": routes}
        )


def _remove_version(model_dir: Path, version: int) -> None:
    """Remove a version folder atomically from a scanner's point of view."""
    final = model_dir / str(version)
    doomed = model_dir / f".{version}.removed-{secrets.token_hex(4)}"
    try:
        os.rename(final, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)
