"""Real MLflow tracking stores in ``tmp_path``, fast.

Creating an MLflow SQLite store runs MLflow's whole migration history (seconds), so the
session builds one empty store and every test gets a private copy of that file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from control_plane.tracking.tracker import ExperimentTracker


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow SQLite store (do not write to it)."""
    folder = tmp_path_factory.mktemp("mlflow-template")
    database = folder / "mlflow.db"
    ExperimentTracker(f"sqlite:///{database}", str(folder / "mlartifacts")).list_experiments()
    return database


def copy_store(template: Path, folder: Path) -> str:
    """Copy the template store into ``folder``; its tracking URI."""
    target = folder / "mlflow.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def tracker(mlflow_template: Path, tmp_path: Path) -> ExperimentTracker:
    """A tracker over a private, empty MLflow store in ``tmp_path``."""
    uri = copy_store(mlflow_template, tmp_path)
    return ExperimentTracker(uri, str(tmp_path / "mlartifacts"))


@pytest.fixture
def seeded_mlflow(mlflow_template: Path, tmp_path: Path) -> str:
    """The template store copied to ``tmp_path/mlflow.db``, where ``control_plane`` looks."""
    return copy_store(mlflow_template, tmp_path)
