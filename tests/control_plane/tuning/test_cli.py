"""``modelyard tune``: a local run with its progress bar, a control-plane job, bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner, Result

from control_plane.server import ControlPlaneServer
from modelyard.cli import main
from tests.control_plane.conftest import admin_token


def invoke(uri: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["tune", *args], env={"MODELYARD_TRACKING_URI": uri})


def test_tune_run_logs_trials_and_prints_the_best(seeded_mlflow: str, tmp_path: Path) -> None:
    result = invoke(
        seeded_mlflow,
        "run", "--model", "logistic_regression", "--dataset", "sklearn:iris", "--trials", "3",
        "--study", "cli-study",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "study cli-study" in result.output
    assert "3 completed" in result.output
    best = json.loads(result.output.splitlines()[-1])
    assert set(best) == {"params", "value", "trial_number", "completed_trials"}


def test_tune_bad_input_is_one_line_and_exit_2(seeded_mlflow: str) -> None:
    empty = invoke(seeded_mlflow, "run", "--model", "xgboost", "--space", "{}", "--replace-space")
    assert empty.exit_code == 2
    assert empty.stderr == (
        "error: search space is empty: give at least one hyperparameter to tune\n"
    )
    sqlite = invoke(seeded_mlflow, "run", "--model", "xgboost", "--storage", "sqlite:///o.db")
    assert sqlite.exit_code == 2
    assert "SQLite locks under parallel workers" in sqlite.stderr


async def test_tune_run_as_a_control_plane_job(control_plane: ControlPlaneServer) -> None:
    url, token = control_plane.url, admin_token(control_plane)
    args = ["run", "--url", url, "--token", token, "--model", "logistic_regression"]
    args += ["--dataset", "sklearn:iris"]
    result = await asyncio.to_thread(invoke, "sqlite:///unused.db", *args, "--trials", "2")
    assert result.exit_code == 0, result.output
    assert ": succeeded" in result.output
    assert json.loads(result.output.splitlines()[-1])["completed_trials"] == 2
    empty = await asyncio.to_thread(
        invoke, "sqlite:///unused.db", *args, "--space", "{}", "--replace-space"
    )
    assert (empty.exit_code, empty.stderr.count("\n")) == (2, 1)
    assert "search space is empty" in empty.stderr
