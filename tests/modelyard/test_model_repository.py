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


# config.json exactly as older registries wrote it for a model whose file named no batching key
# (ModelConfig() with the registry's keys, encoded at the commits whose publisher rewrote the
# whole file: eb14532, 520bd7a, 0f8726f, 81121b7, 2a5712f, d37cb0a).
_POLICY = '"version_policy":{"kind":"specific","latest_n":1,"versions":[1]},"default_version":1'
_TAIL = '"routes":[],"allow_non_finite":false'
LEGACY_REGISTRY_FILES = [
    "{" + ",".join((_POLICY, batching, _TAIL, rest)) + "}"
    for batching, rest in [
        (
            '"batching":{"enabled":true,"max_batch_size":64,"max_queue_delay_us":0,'
            '"max_queue_size":1024,"queue_timeout_us":0}',
            '"intra_op_num_threads":null',
        ),
        (
            '"batching":{"enabled":true,"max_batch_size":64,"max_queue_delay_us":10000,'
            '"linger_us":1000,"max_queue_size":1024,"queue_timeout_us":0}',
            '"max_rows_per_request":0,"intra_op_num_threads":null',
        ),
        (
            '"batching":{"enabled":true,"max_batch_size":64,"max_queue_delay_us":10000,'
            '"linger_us":1000,"max_queue_size":1024,"queue_timeout_us":0,"inline_max_us":100}',
            '"max_rows_per_request":0,"intra_op_num_threads":null,'
            '"prediction_log":{"enabled":true,"every":1,"share":1.0}',
        ),
        (
            '"batching":{"enabled":true,"max_batch_size":64,"max_queue_delay_us":10000,'
            '"linger_us":1000,"max_queue_size":1024,"queue_timeout_us":0,"inline_max_us":100,'
            '"adaptive":true}',
            '"max_rows_per_request":0,"intra_op_num_threads":null,'
            '"prediction_log":{"enabled":true,"every":1,"share":1.0}',
        ),
    ]
]


@pytest.mark.parametrize("written", LEGACY_REGISTRY_FILES)
def test_an_older_registrys_batching_defaults_take_the_servers_settings(
    tmp_path: Path, written: str
) -> None:
    (tmp_path / "config.json").write_text(written)
    config = read_model_config(tmp_path, default_batching=SERVER)
    assert config.batching == SERVER
    assert (config.default_version, config.version_policy.versions) == (1, (1,))
    assert read_model_config(tmp_path).batching == BatchingConfig()  # today's defaults


@pytest.mark.parametrize("written", LEGACY_REGISTRY_FILES)
def test_an_operators_key_in_an_older_registrys_section_still_wins(
    tmp_path: Path, written: str
) -> None:
    raw = json.loads(written)
    raw["batching"]["max_batch_size"] = 8  # the operator's key the older registry copied in
    _write(tmp_path, raw)
    batching = read_model_config(tmp_path, default_batching=SERVER).batching
    assert batching == msgspec.structs.replace(SERVER, max_batch_size=8)


def test_a_marked_or_hand_written_full_section_is_read_as_written(tmp_path: Path) -> None:
    raw = json.loads(LEGACY_REGISTRY_FILES[-1])
    pinned = BatchingConfig(**raw["batching"])
    _write(tmp_path, raw | {"config_version": 2})
    assert read_model_config(tmp_path, default_batching=SERVER).batching == pinned
    _write(tmp_path, {"batching": raw["batching"]})  # no registry's top level: hand-written
    assert read_model_config(tmp_path, default_batching=SERVER).batching == pinned
    for bad in (1, 3, "2", True):
        _write(tmp_path, {"config_version": bad})
        with pytest.raises(ConfigurationError, match="config_version"):
            read_model_config(tmp_path)


def test_write_model_config_pins_every_key_even_at_an_older_registrys_defaults(
    tmp_path: Path,
) -> None:
    legacy = BatchingConfig(max_queue_size=1024, queue_timeout_us=0)
    config = ModelConfig(default_version=1, batching=legacy)
    write_model_config(tmp_path, config)
    assert json.loads((tmp_path / "config.json").read_text())["config_version"] == 2
    assert read_model_config(tmp_path, default_batching=SERVER) == config


@pytest.mark.parametrize("written", LEGACY_REGISTRY_FILES)
def test_an_edit_drops_an_older_registrys_defaults_and_reads_the_same(
    tmp_path: Path, written: str
) -> None:
    raw = json.loads(written)
    raw["batching"]["max_queue_size"] = 5
    _write(tmp_path, raw)
    before = read_model_config(tmp_path, default_batching=SERVER)
    write_model_routes(tmp_path, [Route(version=1, weight=1.0)])
    rewritten = json.loads((tmp_path / "config.json").read_text())
    assert rewritten["batching"] == {"max_queue_size": 5}
    assert "config_version" not in rewritten  # older servers still read the file
    after = read_model_config(tmp_path, default_batching=SERVER)
    assert after == msgspec.structs.replace(before, routes=(Route(version=1, weight=1.0),))
