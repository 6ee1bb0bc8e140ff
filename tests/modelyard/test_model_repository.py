"""The repository layout, completeness rule, version policies and config schema."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from modelyard.errors import AlreadyExists, ConfigurationError, InvalidArgument
from modelyard.model_repository import (
    BatchingConfig,
    ModelConfig,
    Route,
    VersionPolicy,
    check_model_name,
    list_models,
    model_directory,
    publish_version,
    read_model_config,
    remove_version,
    scan_model,
    select_versions,
    update_model_config,
    write_model_config,
    write_model_routes,
)
from modelyard.settings import ServerSettings


def test_publish_is_atomic_and_scan_sees_only_complete_versions(tmp_path: Path) -> None:
    publish_version(tmp_path, "m", 1, {"model.onnx": b"onnx-bytes", "card.json": b"{}"})
    (tmp_path / "m" / ".2.tmp-x").mkdir()
    (tmp_path / "m" / ".2.tmp-x" / "model.onnx").write_bytes(b"half")
    (tmp_path / "m" / "3").mkdir()
    (tmp_path / "m" / "4").mkdir()
    (tmp_path / "m" / "4" / "model.onnx").write_bytes(b"")
    (tmp_path / "m" / "05").mkdir()
    (tmp_path / "m" / "05" / "model.onnx").write_bytes(b"x")
    found = scan_model(tmp_path / "m")
    assert list(found) == [1]
    assert found[1].fingerprint[0] == len(b"onnx-bytes")
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".1")]
    assert list_models(tmp_path) == ["m"]
    assert scan_model(tmp_path / "missing") == {}


def test_publish_refuses_existing_and_bad_input(tmp_path: Path) -> None:
    publish_version(tmp_path, "m", 1, {"model.onnx": b"x"})
    with pytest.raises(AlreadyExists):
        publish_version(tmp_path, "m", 1, {"model.onnx": b"y"})
    with pytest.raises(InvalidArgument):
        publish_version(tmp_path, "m", 2, {"other": b"y"})
    with pytest.raises(InvalidArgument):
        publish_version(tmp_path, "../evil", 2, {"model.onnx": b"y"})


def test_version_policies() -> None:
    assert select_versions([3, 1, 2], VersionPolicy()) == [3]
    assert select_versions([3, 1, 2], VersionPolicy(kind="all")) == [1, 2, 3]
    assert select_versions([3, 1, 2], VersionPolicy(kind="specific", versions=(1, 9))) == [1]
    assert select_versions([], VersionPolicy(latest_n=2)) == []


def test_config_round_trip_defaults_and_errors(tmp_path: Path) -> None:
    assert read_model_config(tmp_path) == ModelConfig()
    config = ModelConfig(default_version=2, allow_non_finite=True)
    write_model_config(tmp_path, config)
    assert read_model_config(tmp_path) == config
    (tmp_path / "config.json").write_text('{"batching": {"max_batch_size": 0}}')
    with pytest.raises(ConfigurationError, match="max_batch_size"):
        read_model_config(tmp_path)
    (tmp_path / "config.json").write_text('{"unknown_key": 1}')
    with pytest.raises(ConfigurationError, match="unknown_key"):
        read_model_config(tmp_path)


# The server's batching and an explicit section: every value differs from the defaults and from
# the other set, so each resolved key shows where it came from.
SERVER = BatchingConfig(
    enabled=True,
    max_batch_size=32,
    max_queue_delay_us=500,
    linger_us=200,
    max_queue_size=77,
    queue_timeout_us=1_234_000,
    inline_max_us=50,
    adaptive=False,
)
EXPLICIT = {
    "enabled": False,
    "max_batch_size": 8,
    "max_queue_delay_us": 0,
    "linger_us": 0,
    "max_queue_size": 5,
    "queue_timeout_us": 9,
    "inline_max_us": 0,
    "adaptive": True,
}
BATCHING_KEYS = [field.name for field in msgspec.structs.fields(BatchingConfig)]


def _write(model_dir: Path, config: object) -> None:
    (model_dir / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("missing", BATCHING_KEYS)
def test_a_partial_batching_section_inherits_each_missing_key_from_the_server(
    tmp_path: Path, missing: str
) -> None:
    _write(tmp_path, {"batching": {k: v for k, v in EXPLICIT.items() if k != missing}})
    batching = read_model_config(tmp_path, default_batching=SERVER).batching
    assert getattr(batching, missing) == getattr(SERVER, missing)
    for key in set(BATCHING_KEYS) - {missing}:
        assert getattr(batching, key) == EXPLICIT[key], key  # a key the file names wins


@pytest.mark.parametrize("config", [{}, {"batching": {}}, {"default_version": 2}])
def test_no_or_an_empty_batching_section_is_the_servers_batching(
    tmp_path: Path, config: dict[str, object]
) -> None:
    _write(tmp_path, config)
    assert read_model_config(tmp_path, default_batching=SERVER).batching == SERVER


def test_without_server_settings_the_defaults_are_the_servers_defaults(tmp_path: Path) -> None:
    _write(tmp_path, {"batching": {"max_batch_size": 8}})
    expected = msgspec.structs.replace(ServerSettings().default_batching, max_batch_size=8)
    assert read_model_config(tmp_path).batching == expected
    assert read_model_config(tmp_path, default_batching=ServerSettings().default_batching) == (
        read_model_config(tmp_path)
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_batch_size", 0),
        ("max_queue_size", -1),
        ("queue_timeout_us", "soon"),
        ("inline_max_us", 10_001),
        ("enabled", "yes"),
        ("bogus_key", 1),
    ],
)
def test_an_invalid_batching_value_is_refused_naming_the_key(
    tmp_path: Path, key: str, value: object
) -> None:
    _write(tmp_path, {"batching": {"max_batch_size": 8, key: value}})
    with pytest.raises(ConfigurationError, match=key):
        read_model_config(tmp_path, default_batching=SERVER)


def test_updates_keep_the_keys_left_to_the_server_unwritten(tmp_path: Path) -> None:
    _write(tmp_path, {"batching": {"max_queue_size": 5}, "allow_non_finite": True})
    update_model_config(tmp_path, {"default_version": 3, "routes": (Route(version=3, weight=1),)})
    write_model_routes(tmp_path, [])
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw == {
        "batching": {"max_queue_size": 5},
        "allow_non_finite": True,
        "default_version": 3,
        "routes": [],
    }
    with pytest.raises(ConfigurationError, match="max_batch_size"):
        update_model_config(tmp_path, {"batching": {"max_batch_size": 0}})
    assert json.loads((tmp_path / "config.json").read_text()) == raw  # refused: file unchanged


def test_remove_version_is_atomic(tmp_path: Path) -> None:
    publish_version(tmp_path, "m", 1, {"model.onnx": b"x"})
    publish_version(tmp_path, "m", 2, {"model.onnx": b"y"})
    assert remove_version(tmp_path, "m", 1)
    assert not remove_version(tmp_path, "m", 1)
    assert list(scan_model(tmp_path / "m")) == [2]
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["2"]


@pytest.mark.parametrize(
    "name", ["..", "../x", "/etc", "a/b", "a\\b", ".hidden", "x\x00", "café", "m\n", "a" * 129, ""]
)
def test_names_outside_the_rule_are_refused_everywhere(tmp_path: Path, name: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    with pytest.raises(InvalidArgument, match="invalid model name"):
        check_model_name(name)
    with pytest.raises(InvalidArgument, match="invalid model name"):
        model_directory(repo, name)
    with pytest.raises(InvalidArgument):
        publish_version(repo, name, 1, {"model.onnx": b"x"})
    with pytest.raises(InvalidArgument):
        remove_version(repo, name, 1)
    assert not (tmp_path / "x").exists()


def test_symlinks_leaving_the_repository_are_invisible_and_refused(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    publish_version(outside, "secret", 1, {"model.onnx": b"x"})
    publish_version(repo, "m", 1, {"model.onnx": b"x"})
    (repo / "evil").symlink_to(outside / "secret", target_is_directory=True)
    (repo / "alias").symlink_to(repo / "m", target_is_directory=True)  # stays inside: fine
    (repo / "bad name").mkdir()
    assert list_models(repo) == ["alias", "m"]
    with pytest.raises(InvalidArgument, match="outside the model repository"):
        model_directory(repo, "evil")
    assert model_directory(repo, "alias") == repo / "alias"
    assert model_directory(repo, "new-model") == repo / "new-model"
