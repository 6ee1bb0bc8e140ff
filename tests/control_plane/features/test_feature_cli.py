"""``modelyard features ...`` run as a user runs it: a subprocess, on the local store or --url."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from control_plane.server import ControlPlaneServer
from modelyard.storage import Database
from tests.control_plane.conftest import admin_token
from tests.control_plane.features.strategies import build_service, sample_update

pytestmark = pytest.mark.slow

CREATE_AGE = [
    "--name=age",
    "--description=Age in years",
    "--dtype=int64",
    "--entity=customer",
    "--owner=risk",
    "--transformation=date_diff('year', birth_date, now())",
    "--source=crm.customers",
    "--tag=pii",
    "--tag=demographics",
]


def environment(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MODELYARD_")}
    return env | {"MODELYARD_DATABASE_URL": database_url}


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", "features", *args],
        cwd=tmp_path,
        env=environment(f"sqlite:///{tmp_path / 'store.db'}"),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def local_admin_token(tmp_path: Path) -> str:
    """The admin token the first local start writes (the CLI goes through the app's guards)."""
    first = run_cli(tmp_path, "list")
    assert first.returncode == 0, first.stderr
    assert "first start: admin token written to" in first.stderr
    return (tmp_path / ".modelyard" / "admin-token").read_text().strip()


def test_local_store_create_get_list_history(tmp_path: Path) -> None:
    token = f"--token={local_admin_token(tmp_path)}"
    unauthenticated = run_cli(tmp_path, "create", *CREATE_AGE)
    assert unauthenticated.returncode == 2, "changes need a token, locally too"
    created = ok(run_cli(tmp_path, "create", *CREATE_AGE, token))
    assert (created["name"], created["version"], created["created_by"]) == ("age", 1, "admin")
    assert created["tags"] == ["pii", "demographics"]
    (tmp_path / "income.json").write_text(
        json.dumps(
            {
                "name": "income",
                "description": "Yearly income",
                "dtype": "float64",
                "entity": "customer",
                "owner": "finance",
                "transformation": "sum(salary)",
                "source": "hr.payroll",
            }
        )
    )
    from_file = ok(run_cli(tmp_path, "create", "--file=income.json", "--owner=treasury", token))
    assert (from_file["owner"], from_file["dtype"]) == ("treasury", "float64")

    async def add_version() -> None:
        database = Database(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            await build_service(database).update_feature("age", sample_update(), actor="bob")
        finally:
            await database.dispose()

    asyncio.run(add_version())
    assert ok(run_cli(tmp_path, "get", "age"))["version"] == 2
    assert ok(run_cli(tmp_path, "get", "age", "--version=1")) == created
    history = ok(run_cli(tmp_path, "history", "age"))
    assert [(v["version"], v["created_by"]) for v in history] == [(1, "admin"), (2, "bob")]
    table = run_cli(tmp_path, "list", "--entity=customer")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "DTYPE", "ENTITY", "OWNER", "TAGS"]
    assert [line.split()[:2] for line in lines[1:-1]] == [["age", "2"], ["income", "1"]]
    assert lines[-1] == "1-2 of 2 features"
    page = ok(run_cli(tmp_path, "list", "--json", "--owner=treasury"))
    assert [f["name"] for f in page["items"]] == ["income"]


def test_local_store_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    token = f"--token={local_admin_token(tmp_path)}"
    incomplete = run_cli(tmp_path, "create", "--name=x", "--dtype=int64", "--owner=o")
    assert incomplete.returncode == 2
    assert incomplete.stderr.strip().splitlines() == [
        "error: feature definition is missing required fields: description, entity, "
        "transformation, source (required: name, description, dtype, entity, owner, "
        "transformation, source)"
    ]
    missing = run_cli(tmp_path, "get", "ghost")
    assert (missing.returncode, missing.stderr.strip()) == (2, "error: feature 'ghost' not found")
    ok(run_cli(tmp_path, "create", *CREATE_AGE, token))
    duplicate = run_cli(tmp_path, "create", *CREATE_AGE, token)
    assert duplicate.returncode == 2
    assert "'age' already exists" in duplicate.stderr
    version = run_cli(tmp_path, "get", "age", "--version=9")
    assert (version.returncode, version.stderr.strip()) == (
        2,
        "error: feature 'age' version 9 not found",
    )


async def run_remote(tmp_path: Path, *args: str, token: str = "") -> tuple[int, str, str]:
    """The CLI in a subprocess that must not block the loop serving the control plane."""
    env = environment(f"sqlite:///{tmp_path / 'never-used' / 'local.db'}")
    if token:
        env["MODELYARD_CONTROL_PLANE_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelyard",
        "features",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


# NOTE: the CLI path is the same whatever store the server uses (REST tests cover both).
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_against_a_running_control_plane(
    control_plane: ControlPlaneServer, tmp_path: Path
) -> None:
    url = f"--url={control_plane.url}"
    code, out, err = await run_remote(tmp_path, "create", url, *CREATE_AGE)
    assert (code, err.strip().split(":")[0]) == (2, "error"), "changes need an API token"
    admin = admin_token(control_plane)
    code, out, err = await run_remote(tmp_path, "create", url, *CREATE_AGE, token=admin)
    assert code == 0, err
    created = json.loads(out)
    assert created["created_by"] == "admin", "the server records the principal"
    services = control_plane.services
    assert services is not None
    await services.feature_service.update_feature("age", sample_update(), actor="bob")
    code, out, err = await run_remote(tmp_path, "get", "age", url, "--version=1")
    assert (code, json.loads(out)) == (0, created), err
    code, out, err = await run_remote(tmp_path, "history", "age", url)
    assert [v["version"] for v in json.loads(out)] == [1, 2], err
    code, out, err = await run_remote(tmp_path, "list", url, "--tag=demographics")
    assert code == 0, err
    assert out.splitlines()[1].split()[:2] == ["age", "2"]
    code, out, err = await run_remote(tmp_path, "get", "ghost", url)
    assert (code, err.strip()) == (2, "error: feature 'ghost' not found")
    code, out, err = await run_remote(tmp_path, "create", url, "--name=y", token=admin)
    assert code == 2
    assert "missing required fields: description, dtype" in err
    assert not (tmp_path / "never-used").exists(), "--url never touches the local store"


async def test_unreachable_control_plane_is_one_line(tmp_path: Path) -> None:
    code, _, err = await run_remote(tmp_path, "list", "--url=http://127.0.0.1:1")
    assert code == 2
    assert err.startswith("error: control plane at http://127.0.0.1:1 is unreachable")
    assert len(err.strip().splitlines()) == 1
