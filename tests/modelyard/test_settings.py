"""Settings: defaults, TOML per environment, MODELYARD_* overrides, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from modelyard.errors import ConfigurationError
from modelyard.model_repository import BatchingConfig
from modelyard.settings import (
    ENVIRONMENTS,
    SECRET_KEY_PARTS,
    ServerSettings,
    Settings,
    load_settings,
    mask_url,
    masked,
    settings_variables,
    validate_settings,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
SHARED = "/srv/modelyard/"
"""The shared volume of the production-shaped environments (docker/, docker/kubernetes/)."""


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings(environ={}, config_dir=None)
    assert settings.environment == "dev"
    assert settings.database.url.startswith("sqlite:///.modelyard/")
    assert settings.tracking.uri.startswith("sqlite:///.modelyard/")


def test_every_config_file_is_an_environment() -> None:
    assert sorted(path.stem for path in CONFIG.glob("*.toml")) == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_file_is_valid(environment: str) -> None:
    settings = load_settings(environ={"MODELYARD_ENV": environment}, config_dir=CONFIG)
    assert settings.environment == environment
    assert validate_settings(settings) == settings
    raw = tomllib.loads((CONFIG / f"{environment}.toml").read_text())
    for section, values in raw.items():
        for key, value in values.items():  # every key is applied as written, none ignored
            assert getattr(getattr(settings, section), key) == value, f"{section}.{key}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_files_hold_no_secret(environment: str) -> None:
    raw: dict[str, dict[str, Any]] = tomllib.loads((CONFIG / f"{environment}.toml").read_text())
    for section, values in raw.items():
        for key, value in values.items():
            assert not any(part in key for part in SECRET_KEY_PARTS), f"{section}.{key}"
            if isinstance(value, str):
                assert mask_url(value) == value, f"{section}.{key} holds a password"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_shared_environments_are_production_shaped(environment: str) -> None:
    settings = load_settings(environ={"MODELYARD_ENV": environment}, config_dir=CONFIG)
    assert settings.database.url.startswith("postgresql://")
    assert settings.tuning.storage.startswith("postgresql://")  # trials on many machines
    assert settings.tracking.uri.startswith("http://")  # an MLflow server, not a local file
    # every replica reads and writes the same stores
    stores = (
        settings.registry.artifact_store,
        settings.registry.model_repository,
        settings.tracking.artifact_root,
        settings.batch.data_root,
    )
    assert all(path.startswith(SHARED) for path in stores), stores
    assert settings.server.model_repository == settings.registry.model_repository
    # every answer recorded, in the control plane's database, spooled on the replica's own disk
    log = settings.prediction_log
    assert log.enabled
    assert settings.prediction_log_url == settings.database.url
    assert log.spool_dir.startswith("/")
    assert not log.spool_dir.startswith(SHARED)  # a spool folder belongs to one live process
    # periodic jobs run in every control-plane replica, each due run once (PostgreSQL leases)
    assert settings.scheduler.enabled
    assert settings.monitoring.smtp_starttls  # the SMTP login never crosses the wire in clear
    assert (settings.server.host, settings.control_plane.host) == ("0.0.0.0", "0.0.0.0")
    assert settings.logging.format == "json"


def test_dev_is_the_embedded_setup() -> None:
    settings = load_settings(environ={"MODELYARD_ENV": "dev"}, config_dir=CONFIG)
    assert settings.database.url.startswith("sqlite:///.modelyard/")
    assert not settings.prediction_log.enabled
    assert settings.batch.data_root.startswith(".modelyard/")


def test_production_uses_postgresql() -> None:
    settings = load_settings(environ={"MODELYARD_ENV": "production"}, config_dir=ROOT / "config")
    assert settings.database.url.startswith("postgresql://")


def test_environment_variables_override_the_file(tmp_path: Path) -> None:
    (tmp_path / "dev.toml").write_text("[server]\ngrpc_port = 9001\nhttp_port = 9000\n")
    settings = load_settings(environ={"MODELYARD_SERVER_GRPC_PORT": "7001"}, config_dir=tmp_path)
    assert (settings.server.grpc_port, settings.server.http_port) == (7001, 9000)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MODELYARD_DATABASE_URL": "nonsense://x"}, "database.url='nonsense://x'"),
        ({"MODELYARD_SERVER_GRPC_PORT": "abc"}, "server.grpc_port='abc'"),
        ({"MODELYARD_SERVER_HTTP_PORT": "70000"}, "server.http_port=70000"),
        ({"MODELYARD_NO_SUCH_THING": "1"}, "MODELYARD_NO_SUCH_THING"),
        ({"MODELYARD_ENV": "prod"}, "MODELYARD_ENV='prod'"),
    ],
)
def test_bad_settings_name_the_key_and_value(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_settings(environ=environ, config_dir=None)


def test_unknown_key_in_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "dev.toml").write_text("[server]\ngrcp_port = 1\n")
    with pytest.raises(ConfigurationError, match=r"server\.grcp_port"):
        load_settings(environ={}, config_dir=tmp_path)


def test_secrets_are_masked() -> None:
    settings = load_settings(
        environ={"MODELYARD_DATABASE_URL": "postgresql://app:hunter2@db:5432/m"}, config_dir=None
    )
    shown = masked(settings)
    assert "hunter2" not in str(shown)
    assert shown["database"]["url"] == "postgresql://app:***@db:5432/m"


def test_env_example_lists_every_variable_and_nothing_stale() -> None:
    listed = set(
        re.findall(r"^#?\s*(MODELYARD_[A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    known = set(settings_variables()) | {"MODELYARD_ENV", "MODELYARD_CONFIG_DIR"}
    assert known - listed == set(), "settings missing from .env.example"
    assert listed - known == set(), ".env.example names variables no setting reads"


def test_env_example_shows_the_defaults() -> None:
    text = (ROOT / ".env.example").read_text()
    shown = dict(re.findall(r"^(MODELYARD_[A-Z_]+)=(.*)$", text, re.M))
    expected = Settings(environment=shown["MODELYARD_ENV"])
    assert load_settings(environ=shown, config_dir=None) == expected


def test_server_ranges_are_checked_once_loaded_or_replaced() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("server.sketch_sample_rate='2'")):
        load_settings(environ={"MODELYARD_SERVER_SKETCH_SAMPLE_RATE": "2"}, config_dir=None)
    settings = load_settings(environ={}, config_dir=None)
    flagged = msgspec.structs.replace(
        settings, server=msgspec.structs.replace(settings.server, intra_op_threads=0)
    )
    with pytest.raises(ConfigurationError, match=re.escape("server.intra_op_threads=0")):
        validate_settings(flagged)


def test_one_set_of_batching_defaults() -> None:
    assert ServerSettings().default_batching == BatchingConfig()
    environ = {
        "MODELYARD_SERVER_MAX_BATCH_SIZE": "16",
        "MODELYARD_SERVER_MAX_QUEUE_DELAY_US": "7",
        "MODELYARD_SERVER_BATCH_LINGER_US": "6",
        "MODELYARD_SERVER_BATCH_INLINE_MAX_US": "5",
        "MODELYARD_SERVER_QUEUE_CAPACITY": "4",
        "MODELYARD_SERVER_QUEUE_TIMEOUT_MS": "3",
    }
    batching = load_settings(environ=environ, config_dir=None).server.default_batching
    assert batching == BatchingConfig(
        max_batch_size=16,
        max_queue_delay_us=7,
        linger_us=6,
        inline_max_us=5,
        max_queue_size=4,
        queue_timeout_us=3000,
    )


def test_a_zero_poll_interval_means_explicit_control() -> None:
    assert ServerSettings(poll_interval_s=0).effective_control_mode == "explicit"
    assert ServerSettings(control_mode="none", poll_interval_s=0).effective_control_mode == "none"
    assert ServerSettings().effective_control_mode == "poll"


def test_the_prediction_log_defaults_to_the_database() -> None:
    settings = load_settings(environ={"MODELYARD_DATABASE_URL": "sqlite:///x.db"}, config_dir=None)
    assert settings.prediction_log_url == "sqlite:///x.db"
    other = load_settings(
        environ={"MODELYARD_PREDICTION_LOG_DATABASE_URL": "sqlite:///log.db"}, config_dir=None
    )
    assert other.prediction_log_url == "sqlite:///log.db"


def test_bad_setting_stops_the_cli_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "config", "show"],
        env={"MODELYARD_DATABASE_URL": "nonsense://x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "database.url='nonsense://x'" in result.stderr
    assert "Traceback" not in result.stderr
