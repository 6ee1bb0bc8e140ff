"""The tuner on tiny real models: pruning, threads, refit, and the errors it refuses with."""

from __future__ import annotations

import optuna
import pytest

from control_plane.tracking.tracker import ExperimentTracker
from control_plane.tuning.datasets import load_dataset
from control_plane.tuning.estimators import HoldoutObjective
from control_plane.tuning.spaces import IntRange, search_space
from control_plane.tuning.tuner import HyperparameterTuner
from modelyard.errors import FailedPrecondition, InvalidArgument


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["lightgbm", "xgboost"])
def test_boosters_report_intermediate_values_and_refit(
    model: str, tracker: ExperimentTracker
) -> None:
    features, labels = load_dataset("sklearn:breast_cancer")
    tuner = HyperparameterTuner(
        model, space={"n_estimators": IntRange(low=10, high=30)}, seed=3, tracker=tracker
    )
    objective = HoldoutObjective(model, features, labels, report_every=5)
    progress = tuner.optimize(objective, n_trials=8, n_jobs=2)
    assert progress.finished == 8
    assert progress.completed + progress.pruned == 8
    trials = tuner.create_study().get_trials()
    assert all(trial.intermediate_values for trial in trials)
    best = tuner.best_configuration()
    assert best.value == progress.best_value
    fitted = tuner.refit(features, labels)
    assert fitted.predict_proba(features[:3]).shape == (3, 2)
    assert fitted.get_params()["n_estimators"] == best.params["n_estimators"]


def test_logistic_regression_tunes_and_refits() -> None:
    features, labels = load_dataset("sklearn:iris")
    tuner = HyperparameterTuner("logistic_regression", seed=0)
    tuner.optimize(HoldoutObjective("logistic_regression", features, labels), n_trials=4)
    model = tuner.refit(features, labels)
    assert model.predict(features[:5]).tolist() == labels[:5].tolist()
    assert model.get_params()["classifier__C"] == tuner.best_configuration().params["C"]


def test_an_empty_search_space_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="search space is empty"):
        HyperparameterTuner("lightgbm", space={}, replace_space=True)
    with pytest.raises(InvalidArgument, match="search space is empty"):
        search_space("logistic_regression", {"C": None, "class_weight": None})


def test_bad_tuning_arguments_name_the_problem() -> None:
    with pytest.raises(InvalidArgument, match="unknown model 'svm'"):
        HyperparameterTuner("svm")
    with pytest.raises(InvalidArgument, match="'n_estimators': low 30 > high 10"):
        HyperparameterTuner("xgboost", space={"n_estimators": IntRange(low=30, high=10)})
    with pytest.raises(InvalidArgument, match="SQLite locks under parallel workers"):
        HyperparameterTuner("xgboost", storage="sqlite:///optuna.db")
    with pytest.raises(FailedPrecondition, match="no completed trial"):
        HyperparameterTuner("xgboost").best_configuration()
