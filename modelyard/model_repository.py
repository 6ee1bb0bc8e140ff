"""The model repository on disk: layout, completeness rule and the per-model config schema.

Both planes use this module: the control plane publishes versions with
:func:`publish_version`, the inference server scans with :func:`scan_model`. Keeping the rule in
one place means a server never loads what a publisher has not finished writing.

Layout (the Triton / MLServer convention)::

    <repo>/<model>/config.json          optional, schema :class:`ModelConfig`
    <repo>/<model>/<version>/model.onnx one folder per version, named by a positive integer

Completeness convention:

* A version directory is *complete* when its name is a positive decimal integer without
  leading zeros (``1``, ``2``, ``17``) and it holds a regular, non-empty ``model.onnx``.
  Anything whose name starts with a dot is invisible to the server (temporary directories,
  editor files), and so is any other name.
* Publishers (the control plane, :func:`publish_version`) write the whole version into a
  dot-prefixed sibling (``<repo>/<model>/.3.tmp-<random>``), fsync it, then ``rename`` it to
  ``<repo>/<model>/3``. A rename within one file system is atomic, so a scan sees either no
  version 3 or all of it.
* A person dropping a file by hand should do the same (copy into ``.3/`` and ``mv .3 3``), or
  copy the file as ``3/model.onnx.partial`` and rename it to ``model.onnx``. If a file is copied
  in place anyway, the server may see it truncated: the load then fails, the previous version
  keeps serving, and because the scan fingerprints each version by the ``(size, mtime_ns)`` of
  its ``model.onnx``, the server retries as soon as the copy changes the file again.
* ``config.json`` is replaced atomically too (written aside, then ``os.replace``):
  :func:`write_model_config`. A version leaves the same way it came: renamed to a dot-name,
  then deleted (:func:`remove_version`).

Batching defaults, one rule (Triton's and MLServer's): a key that a model's ``batching``
section leaves out takes the *server's* setting, whether the section is absent, empty or
partial. :func:`read_model_config` receives the server's batching
(``ServerSettings.default_batching``, built from the ``server.*`` settings) and overlays only
the keys the file names; a key the file names always wins, and every named key is validated
with an error naming it. :class:`BatchingConfig`'s own defaults are the ``server.*`` defaults
(``settings.py`` takes them from here), so a reader given no server settings resolves the same
way as a server left at its defaults. Writers that edit a file keep it as written
(:func:`update_model_config`): they never write out the keys a file left to the server.
Files an older registry wrote pin a full section of the defaults of their day; the keys still
at those defaults count as left out (:mod:`modelyard.legacy_config`), and the next edit drops
them from the file. An optional top-level ``"config_version": 2`` marks a file whose every key
is the user's choice (:func:`write_model_config` writes it).

Model names (:func:`check_model_name`) are 1-128 letters, digits and ``_ . -`` starting with a
letter or digit: safe as one folder name (no separator, no ``..``, no leading dot, no NUL).
Every entry point that takes a model name from outside (the registry, the server's load and
unload on both protocols, the repository scan) applies this one rule, and
:func:`model_directory` also refuses a path that resolves outside the repository (a symlink
pointing elsewhere).

>>> parse_version_dir("12"), parse_version_dir("012"), parse_version_dir(".3.tmp-x")
(12, None, None)
>>> select_versions([1, 2, 5], VersionPolicy(kind="latest", latest_n=2))
[2, 5]
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from modelyard.enums import ModelVariant
from modelyard.errors import AlreadyExists, ConfigurationError, InvalidArgument
from modelyard.legacy_config import CONFIG_VERSION, CONFIG_VERSION_KEY, registry_defaults

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

MODEL_FILENAME = "model.onnx"
CONFIG_FILENAME = "config.json"

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]

MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
"""The repository's naming rule for model folders (use with ``fullmatch``)."""


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
        inline_max_us: a request reaching an idle batcher, or a batch under load that holds
            every request in flight, runs on the event loop itself (no hand-off to the
            session thread) when its cost estimated at load (one row, plus each further row)
            is at most this; 0 always hands off.
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

    version: PositiveInt
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


_CONFIG_ENCODER = msgspec.json.Encoder()


def parse_version_dir(name: str) -> int | None:
    """Return the version a directory name stands for, or None if it is not a version."""
    if not name.isdecimal() or not name.isascii() or name.startswith("0"):
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


def read_model_config(
    model_dir: Path, *, default_batching: BatchingConfig | None = None
) -> ModelConfig:
    """Read ``config.json`` of a model, or the defaults when there is none.

    The ``batching`` section is resolved key by key: a key the file names wins, every other
    key takes ``default_batching`` (the server's settings), with or without a section.

    >>> import tempfile
    >>> model = Path(tempfile.mkdtemp())
    >>> _ = (model / CONFIG_FILENAME).write_text('{"batching": {"max_batch_size": 8}}')
    >>> server = BatchingConfig(max_batch_size=32, max_queue_size=100)
    >>> batching = read_model_config(model, default_batching=server).batching
    >>> batching.max_batch_size, batching.max_queue_size
    (8, 100)

    Args:
        model_dir: the model's directory.
        default_batching: the server-wide batching that fills the keys the file's
            ``batching`` section leaves out (None: :class:`BatchingConfig` defaults, which
            are the server's defaults).

    Raises:
        ConfigurationError: the file is not valid JSON or does not match the schema (the
            message names the offending key).
    """
    raw = _read_raw(model_dir / CONFIG_FILENAME)
    config = _validated(model_dir / CONFIG_FILENAME, raw)
    section = raw.get("batching", {})
    assert isinstance(section, dict)  # _validated checked the shape
    legacy = registry_defaults(raw)
    named = {key: getattr(config.batching, key) for key in section if key not in legacy}
    base = BatchingConfig() if default_batching is None else default_batching
    return msgspec.structs.replace(config, batching=msgspec.structs.replace(base, **named))


def _read_raw(path: Path) -> dict[str, object]:
    try:
        raw: object = msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        return {}
    except msgspec.DecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path}: expected a JSON object")
    return raw


def _validated(path: Path, raw: Mapping[str, object]) -> ModelConfig:
    """``raw`` checked against :class:`ModelConfig` (and the ``config_version`` marker)."""
    body = dict(raw)
    marker = body.pop(CONFIG_VERSION_KEY, CONFIG_VERSION)
    if type(marker) is not int or marker != CONFIG_VERSION:
        raise ConfigurationError(f"{path}: `{CONFIG_VERSION_KEY}` must be {CONFIG_VERSION}")
    try:
        return msgspec.convert(body, ModelConfig)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"{path}: {exc}") from exc


def write_model_config(model_dir: Path, config: ModelConfig) -> None:
    """Write ``config.json`` atomically (aside, then ``os.replace``).

    Every field is written, ``batching`` included, so the file pins every batching key; it is
    marked ``"config_version": 2`` so no key is taken for an older registry's default. Code
    that edits a model's file (the registry, the routes API) uses :func:`update_model_config`,
    which keeps the keys left to the server's settings unwritten.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{CONFIG_FILENAME}.tmp-{secrets.token_hex(4)}"
    marked = msgspec.to_builtins(config) | {CONFIG_VERSION_KEY: CONFIG_VERSION}
    tmp.write_bytes(_CONFIG_ENCODER.encode(marked))
    os.replace(tmp, model_dir / CONFIG_FILENAME)


def update_model_config(model_dir: Path, changes: Mapping[str, object]) -> ModelConfig:
    """Replace some top-level keys of a model's config.json atomically, keeping the others.

    The other keys are kept as written (a file without ``batching``, or with part of it, keeps
    taking the server's settings for the rest), except the batching keys an older registry
    filled with its defaults, which are dropped; the result is checked against
    :class:`ModelConfig` before it replaces the file (aside, fsync, ``os.replace``), so a poll
    never sees a half-written file. A missing file counts as ``{}``.

    Args:
        model_dir: the model's directory (created if missing).
        changes: top-level key -> new value (Structs, tuples and None as msgspec encodes them).

    Returns:
        The new configuration (as the file now reads, without server defaults).

    Raises:
        ConfigurationError: the present file is not a JSON object matching the schema, or a
            change does not match it.
    """
    path = model_dir / CONFIG_FILENAME
    raw = _read_raw(path)
    legacy = registry_defaults(raw)
    if legacy:  # an older registry's defaults: left out from now on (read the same either way)
        section = raw["batching"]
        assert isinstance(section, dict)
        raw["batching"] = {key: value for key, value in section.items() if key not in legacy}
    raw.update(msgspec.to_builtins(dict(changes)))
    config = _validated(path, raw)
    data = _CONFIG_ENCODER.encode(raw)
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f".{CONFIG_FILENAME}.tmp-{secrets.token_hex(4)}"
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(model_dir)
    return config


def write_model_routes(model_dir: Path, routes: Sequence[Route]) -> ModelConfig:
    """Replace the ``routes`` of a model's config.json atomically, keeping every other key.

    :func:`update_model_config` with ``routes`` only.

    Raises:
        ConfigurationError: the present file is not a JSON object matching the schema.
    """
    return update_model_config(model_dir, {"routes": tuple(routes)})


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
        _fsync_dir(model_dir)
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
    _fsync_dir(final.parent)
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
