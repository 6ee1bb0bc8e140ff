"""The command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("config", "db", "control-plane"):
        assert command in result.stdout


def test_db_upgrade_creates_the_embedded_store(tmp_path: Path) -> None:
    result = run_cli("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "modelyard_0003" in result.stdout  # the newest revision of the modelyard branch
    assert (tmp_path / ".modelyard" / "modelyard.db").is_file()


def test_config_show_prints_the_effective_configuration(tmp_path: Path) -> None:
    result = run_cli("config", "show", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"environment": "dev"' in result.stdout
