"""The Airflow DAG imports with Airflow 3 and wires check_drift → retrain → evaluate → deploy.

Airflow lives in its own virtualenv (``.venv-airflow``, built by ``make install`` from
``constraints-airflow.txt``): its pins clash with ours. The check runs in that interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"


def test_the_retraining_dag_loads_with_airflow(tmp_path: Path) -> None:
    if not AIRFLOW_PYTHON.exists():
        message = f"{AIRFLOW_PYTHON} is missing: run `make install`"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    }
    result = subprocess.run(
        [
            str(AIRFLOW_PYTHON),
            str(ROOT / "docker/airflow/check_dag.py"),
            str(ROOT / "docker/airflow/dags"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["import_errors"] == {}
    assert report["dags"] == ["modelyard_retraining"]
    assert report["tasks"] == {
        "check_drift": ["retrain"],
        "retrain": ["evaluate"],
        "evaluate": ["deploy"],
        "deploy": [],
    }
    assert "weekly" in report["schedule"] or report["schedule"] == "0 0 * * 0"
    assert report["params"] == {"model": "churn"}
    assert report["catchup"] is False
