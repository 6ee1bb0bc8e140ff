"""Properties 31 and 32 of issue 6: trials logged to MLflow, best configuration is the best."""

from __future__ import annotations

import uuid
from typing import Any

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.tracking.tracker import ExperimentTracker
from control_plane.tuning.spaces import Choice, FloatRange, IntRange, ParamSpec
from control_plane.tuning.tuner import HyperparameterTuner

PROPERTY_SETTINGS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SPACE: dict[str, ParamSpec | None] = {
    "x": FloatRange(low=-5.0, high=5.0),
    "k": IntRange(low=1, high=4),
    "kind": Choice(choices=["a", "b"]),
}


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def reporting_objective(trial: optuna.Trial, params: dict[str, Any]) -> float:
    """A cheap objective that reports intermediate values, so some trials get pruned."""
    value = (params["x"] - 1.0) ** 2 + params["k"] + (params["kind"] == "b")
    for step in range(3):
        trial.report(value + 2 - step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(value)


@PROPERTY_SETTINGS
@given(n_trials=st.integers(1, 6), n_jobs=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_property_31_every_trial_is_logged_to_mlflow(
    tracker: ExperimentTracker, n_trials: int, n_jobs: int, seed: int
) -> None:
    """Each trial is a child run of the study's run with its params, value, state and number."""
    experiment = f"tune-{uuid.uuid4().hex[:10]}"
    tuner = HyperparameterTuner(
        "lightgbm",
        space=SPACE,
        replace_space=True,
        seed=seed,
        tracker=tracker,
        experiment=experiment,
    )
    tuner.optimize(reporting_objective, n_trials=n_trials, n_jobs=n_jobs)
    study_run = tuner.study_run_id
    assert study_run is not None
    children = tracker.search_runs(
        [experiment], filter=f"tags.`mlflow.parentRunId` = '{study_run}'", max_results=1000
    )
    trials = tuner.create_study().get_trials()
    assert len(children) == len(trials) == n_trials
    by_number = {int(run.tags["optuna.trial_number"]): run for run in children}
    assert sorted(by_number) == sorted(trial.number for trial in trials)
    for trial in trials:
        run = by_number[trial.number]
        assert run.run_name == f"trial-{trial.number}"
        assert run.params == {key: str(value) for key, value in trial.params.items()}
        assert run.tags["optuna.trial_state"] == trial.state.name
        assert run.metrics["trial_number"] == trial.number
        assert run.metrics["duration_s"] >= 0
        assert run.metrics.get("objective") == trial.value
        assert run.end_time_ms is not None
    assert tracker.get_run(study_run).status.value == "FINISHED"


@PROPERTY_SETTINGS
@given(
    n_trials=st.integers(1, 12),
    direction=st.sampled_from(["minimize", "maximize"]),
    weights=st.tuples(st.floats(-3, 3), st.floats(-3, 3)),
    seed=st.integers(0, 2**16),
)
def test_property_32_best_configuration_is_the_best_completed_trial(
    n_trials: int, direction: str, weights: tuple[float, float], seed: int
) -> None:
    """best_configuration() is the best value over all completed trials, with its params."""
    tuner = HyperparameterTuner(
        "xgboost", space=SPACE, replace_space=True, seed=seed, direction=direction
    )

    def objective(trial: optuna.Trial, params: dict[str, Any]) -> float:
        if params["kind"] == "b" and params["k"] == 4:
            raise optuna.TrialPruned()  # some trials never complete
        return float(weights[0] * params["x"] + weights[1] * params["k"])

    tuner.optimize(objective, n_trials=n_trials)
    completed = [
        t for t in tuner.create_study().get_trials() if t.state is optuna.trial.TrialState.COMPLETE
    ]
    if not completed:
        return
    values = [t.value for t in completed if t.value is not None]
    best = tuner.best_configuration()
    assert best.value == (min(values) if direction == "minimize" else max(values))
    assert best.completed_trials == len(completed)
    chosen = next(t for t in completed if t.number == best.trial_number)
    assert chosen.value == best.value
    assert best.params == chosen.params
