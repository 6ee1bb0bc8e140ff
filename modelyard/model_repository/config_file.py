"""Reading and writing a model's ``config.json``: validation, batching defaults, atomic edits.

The batching-defaults rule (a key the file leaves out takes the server's setting) and the
``config_version`` marker are described in :mod:`modelyard.model_repository`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from modelyard.errors import ConfigurationError
from modelyard.legacy_config import CONFIG_VERSION, CONFIG_VERSION_KEY, registry_defaults
from modelyard.model_repository.layout import CONFIG_FILENAME, fsync_dir
from modelyard.model_repository.schema import BatchingConfig, ModelConfig

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from modelyard.model_repository.schema import Route

_CONFIG_ENCODER = msgspec.json.Encoder()


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
    except OSError as exc:  # NOTE: a directory or an unreadable file where config.json belongs
        raise ConfigurationError(f"{path}: cannot be read ({exc.strerror})") from exc
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
    fsync_dir(model_dir)
    return config


def write_model_routes(model_dir: Path, routes: Sequence[Route]) -> ModelConfig:
    """Replace the ``routes`` of a model's config.json atomically, keeping every other key.

    :func:`update_model_config` with ``routes`` only.

    Raises:
        ConfigurationError: the present file is not a JSON object matching the schema.
    """
    return update_model_config(model_dir, {"routes": tuple(routes)})
