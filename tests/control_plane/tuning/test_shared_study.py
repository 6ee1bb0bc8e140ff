"""Two worker processes share one study through Optuna's RDB storage on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

from control_plane.tracking.tracker import ExperimentTracker
from control_plane.tuning.tuner import HyperparameterTuner
from tests.conftest import POSTGRES_URL, PostgresSchema, require_postgres
from tests.control_plane.mlflow_fixtures import copy_store

TRIALS_PER_WORKER = 5


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_share_one_study_without_duplicates(
    mlflow_template: Path, tmp_path: Path
) -> None:
    require_postgres()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    schema = PostgresSchema()  # Optuna creates its tables in this throw-away schema
    asyncio.run(schema.create())
    storage = f"{POSTGRES_URL}?options=-csearch_path%3D{schema.name}"
    tracking_uri = copy_store(mlflow_template, tmp_path)
    tracker = ExperimentTracker(tracking_uri, str(tmp_path / "mlartifacts"))
    study = f"shared-{uuid.uuid4().hex[:10]}"
    tuner = HyperparameterTuner(
        "logistic_regression",
        study_name=study,
        storage=storage,
        tracker=tracker,
        experiment="shared",
    )
    try:
        tuner.create_study()
        env = os.environ | {
            "MODELYARD_TRACKING_URI": tracking_uri,
            "MODELYARD_TRACKING_ARTIFACT_ROOT": str(tmp_path / "mlartifacts"),
            "MODELYARD_TUNING_STORAGE": storage,
        }
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modelyard",
                    "tune",
                    "run",
                    "--model",
                    "logistic_regression",
                    "--study",
                    study,
                    "--experiment",
                    "shared",
                    "--dataset",
                    "sklearn:iris",
                    "--trials",
                    str(TRIALS_PER_WORKER),
                    "--seed",
                    str(seed),
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for seed in (1, 2)
        ]
        outputs = [worker.communicate(timeout=280) for worker in workers]
        for worker, (_, stderr) in zip(workers, outputs, strict=True):
            assert worker.returncode == 0, stderr[-2000:]

        trials = tuner.create_study().get_trials()  # read back from PostgreSQL
        assert len(trials) == 2 * TRIALS_PER_WORKER
        assert sorted(trial.number for trial in trials) == list(range(2 * TRIALS_PER_WORKER))
        assert len({trial._trial_id for trial in trials}) == len(trials)
        per_worker = Counter(trial.user_attrs["worker"] for trial in trials)
        assert sorted(per_worker.values()) == [TRIALS_PER_WORKER, TRIALS_PER_WORKER]

        study_run = tuner.study_run_id
        children = tracker.search_runs(
            ["shared"], filter=f"tags.`mlflow.parentRunId` = '{study_run}'", max_results=100
        )
        numbers = sorted(int(run.tags["optuna.trial_number"]) for run in children)
        assert numbers == list(range(2 * TRIALS_PER_WORKER))
        best = tuner.best_configuration()
        completed = [t.value for t in trials if t.value is not None]
        assert best.value == min(completed)
    finally:
        tuner.close()
        asyncio.run(schema.drop())
