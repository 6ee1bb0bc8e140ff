"""The model repository on disk: layout, completeness rule and the per-model config schema.

The package splits along those seams - :mod:`.layout` (names, version folders, scan, publish),
:mod:`.schema` (the ``config.json`` Structs), :mod:`.config_file` (reading, validating and
writing ``config.json``) - and re-exports their public names here, the import path to use.

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

from modelyard.model_repository.config_file import (
    read_model_config,
    update_model_config,
    write_model_config,
    write_model_routes,
)
from modelyard.model_repository.layout import (
    CONFIG_FILENAME,
    MODEL_FILENAME,
    MODEL_NAME_PATTERN,
    VersionEntry,
    check_model_name,
    list_models,
    model_directory,
    parse_version_dir,
    publish_version,
    remove_version,
    scan_model,
    select_versions,
)
from modelyard.model_repository.schema import (
    BatchingConfig,
    ConfigStruct,
    LogSampling,
    ModelConfig,
    PositiveInt,
    Route,
    VersionPolicy,
)

__all__ = [
    "CONFIG_FILENAME",
    "MODEL_FILENAME",
    "MODEL_NAME_PATTERN",
    "BatchingConfig",
    "ConfigStruct",
    "LogSampling",
    "ModelConfig",
    "PositiveInt",
    "Route",
    "VersionEntry",
    "VersionPolicy",
    "check_model_name",
    "list_models",
    "model_directory",
    "parse_version_dir",
    "publish_version",
    "read_model_config",
    "remove_version",
    "scan_model",
    "select_versions",
    "update_model_config",
    "write_model_config",
    "write_model_routes",
]
