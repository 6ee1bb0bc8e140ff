"""The repository layout on disk: model names, version folders, the completeness rule.

Scanning (:func:`scan_model`, :func:`list_models`) and the atomic publish/remove of whole
versions (:func:`publish_version`, :func:`remove_version`); the rules themselves are described
in :mod:`modelyard.model_repository`.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from modelyard.errors import AlreadyExists, InvalidArgument
from modelyard.models import NAME_PATTERN

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from modelyard.model_repository.schema import VersionPolicy

MODEL_FILENAME = "model.onnx"
CONFIG_FILENAME = "config.json"

MODEL_NAME_PATTERN = re.compile(NAME_PATTERN)  # NOTE: the one name rule (modelyard.models)
"""The repository's naming rule for model folders (use with ``fullmatch``)."""


class VersionEntry(msgspec.Struct, kw_only=True, frozen=True):
    """A complete version directory as a scan saw it.

    Attributes:
        version: the version number.
        path: the ``model.onnx`` file.
        fingerprint: ``(size, mtime_ns)`` of the file; a change means "load again".
    """

    version: int
    path: Path
    fingerprint: tuple[int, int]


def parse_version_dir(name: str) -> int | None:
    """Return the version a directory name (or a version in a request) stands for, or None if
    it is not one: ASCII digits without a leading zero, at most 19 of them (an int64). A longer
    string made ``int`` raise past 4,300 digits (a 500), and "01" or a fullwidth one (U+FF11)
    named a loaded version by another spelling (a 503 "retry" for good).

    >>> [parse_version_dir(v) for v in ("3", "03", "0", "\uff11", "9" * 20, "x")]
    [3, None, None, None, None, None]
    """
    if not name.isdecimal() or not name.isascii() or name.startswith("0") or len(name) > 19:
        return None
    return int(name)


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name (safe as one folder: no separators, no leading dot).

    >>> check_model_name("churn-v2.1")
    'churn-v2.1'
    >>> [MODEL_NAME_PATTERN.fullmatch(n) is None for n in ("churn\\n", "../x", "/etc", ".h")]
    [True, True, True, True]

    Raises:
        InvalidArgument: the name has other characters, starts with ``.``/``_``/``-``, or is
            longer than 128.
    """
    if MODEL_NAME_PATTERN.fullmatch(name) is None:
        shown = name if len(name) <= 140 else f"{name[:140]}..."
        raise InvalidArgument(
            f"invalid model name {shown!r}: 1-128 letters, digits and _ . -, "
            "starting with a letter or digit"
        )
    return name


def model_directory(repo: Path, name: str) -> Path:
    """The folder of model ``name`` in ``repo``, checked to stay inside the repository.

    Raises:
        InvalidArgument: ``name`` breaks the naming rule, or the folder resolves outside the
            repository (a symlink to elsewhere).
    """
    check_model_name(name)
    path = repo / name
    root = repo.resolve()
    resolved = path.resolve()
    if resolved.parent != root:
        raise InvalidArgument(f"model {name!r} resolves outside the model repository")
    return path


def scan_model(model_dir: Path) -> dict[int, VersionEntry]:
    """Return the complete versions under one model directory (empty if it is missing)."""
    found: dict[int, VersionEntry] = {}
    try:
        entries = list(os.scandir(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        version = parse_version_dir(entry.name)
        if version is None or not entry.is_dir():
            continue
        model_file = Path(entry.path) / MODEL_FILENAME
        try:
            stat = model_file.stat()
        except OSError:
            continue
        if stat.st_size > 0 and model_file.is_file():
            found[version] = VersionEntry(
                version=version, path=model_file, fingerprint=(stat.st_size, stat.st_mtime_ns)
            )
    return found


def list_models(repo: Path) -> list[str]:
    """Return the model directory names in a repository.

    Only names that follow the naming rule count (dot-prefixed temporary folders and anything
    else are invisible); a symlink is followed only when it stays inside the repository.
    """
    try:
        entries = list(os.scandir(repo))
    except FileNotFoundError:
        return []
    root = repo.resolve()
    return sorted(
        e.name
        for e in entries
        if MODEL_NAME_PATTERN.fullmatch(e.name) is not None
        and e.is_dir()
        and (not e.is_symlink() or Path(e.path).resolve().parent == root)
    )


def select_versions(available: Iterable[int], policy: VersionPolicy) -> list[int]:
    """Apply a version policy to the complete versions; ascending order."""
    ordered = sorted(available)
    if policy.kind == "all":
        return ordered
    if policy.kind == "specific":
        wanted = set(policy.versions)
        return [v for v in ordered if v in wanted]
    return ordered[-policy.latest_n :]


def publish_version(
    repo: Path, model: str, version: int, files: Mapping[str, bytes | Path]
) -> Path:
    """Publish one complete version: written aside in a dot-directory, then renamed in place.

    Args:
        repo: repository root.
        model: model name (a folder name).
        version: positive version number.
        files: file name -> content (bytes) or a file to copy; must include ``model.onnx``.

    Returns:
        The published version directory.

    Raises:
        InvalidArgument: no ``model.onnx``, a bad name (:func:`model_directory`), or
            version < 1.
        AlreadyExists: the version directory exists already.
    """
    if MODEL_FILENAME not in files or version < 1:
        raise InvalidArgument(f"cannot publish {model!r} version {version}: bad version or files")
    model_dir = model_directory(repo, model)
    final = model_dir / str(version)
    if final.exists():
        raise AlreadyExists(f"model {model!r} version {version} already exists in {repo}")
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{version}.tmp-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for name, content in files.items():
            target = tmp / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
            with target.open("rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)
        fsync_dir(model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_version(repo: Path, model: str, version: int) -> bool:
    """Take a version out of the repository atomically (renamed to a dot-name, then deleted).

    A scan sees the version either complete or gone, never half-deleted; servers retire it at
    their next poll. Returns False when the version was not there.

    Raises:
        InvalidArgument: a bad model name (:func:`model_directory`).
    """
    final = model_directory(repo, model) / str(version)
    if not final.is_dir():
        return False
    doomed = final.parent / f".{version}.removed-{secrets.token_hex(4)}"
    os.rename(final, doomed)
    fsync_dir(final.parent)
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def fsync_dir(path: Path) -> None:
    """fsync a directory, so a rename or replace inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
