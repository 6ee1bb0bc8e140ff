"""Settings: defaults, TOML per environment, MODELYARD_* overrides, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.errors import ConfigurationError
from modelyard.settings import ENVIRONMENTS, load_settings, masked, settings_variables

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings(environ={}, config_dir=None)
    assert settings.environment == "dev"
    assert settings.database.url.startswith("sqlite:///.modelyard/")
    assert settings.tracking.uri.startswith("sqlite:///.modelyard/")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_file_is_valid(environment: str) -> None:
    settings = load_settings(environ={"MODELYARD_ENV": environment}, config_dir=ROOT / "config")
    assert settings.environment == environment


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
