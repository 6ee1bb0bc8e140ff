"""Shapes of hyperparameter tuning: best configurations, progress, and tuning jobs."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import msgspec

from control_plane.tuning.spaces import ParamSpec
from modelyard.models import NO_NUL, Seed


class BestConfiguration(msgspec.Struct, kw_only=True, frozen=True):
    """The best completed trial of a study.

    Attributes:
        params: its hyperparameters.
        value: its objective value.
        trial_number: its number in the study.
        completed_trials: how many trials of the study completed.
    """

    params: dict[str, Any]
    value: float
    trial_number: int
    completed_trials: int


class Progress(msgspec.Struct, kw_only=True):
    """How far one ``optimize`` call got (trials of this call, not of other workers).

    Attributes:
        total: trials asked for.
        finished: trials that ended, whatever their state.
        completed: trials that returned a value.
        pruned: trials the pruner stopped early.
        failed: trials whose objective raised.
        best_value: best objective value seen so far.
        best_params: its hyperparameters.
        best_trial: its trial number.
    """

    total: int
    finished: int = 0
    completed: int = 0
    pruned: int = 0
    failed: int = 0
    best_value: float | None = None
    best_params: dict[str, Any] | None = None
    best_trial: int | None = None


class JobStatus(enum.Enum):
    """Lifecycle of a tuning job."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TuningJobRequest(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What to tune, decoded from a REST body.

    Attributes:
        model: ``logistic_regression``, ``lightgbm`` or ``xgboost``.
        dataset: ``sklearn:breast_cancer`` (bundled) or a CSV/Parquet path on the server.
        target: label column of a CSV/Parquet dataset.
        n_trials: trials to run.
        n_jobs: trials run side by side (threads).
        space: overrides of the model's default search space (``null`` drops a name).
        replace_space: use only ``space``, not the defaults.
        seed: sampler and estimator seed.
        study_name: the Optuna study (generated when omitted).
        experiment: the MLflow experiment the study's run goes to.
    """

    model: str
    dataset: str = "sklearn:breast_cancer"
    target: str | None = None
    n_trials: int = 20
    n_jobs: int = 1
    space: dict[str, ParamSpec | None] = {}
    replace_space: bool = False
    seed: Seed | None = 0
    study_name: Annotated[str, msgspec.Meta(max_length=300, pattern=NO_NUL)] | None = None
    experiment: Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=NO_NUL)] = (
        "tuning"
    )
    """(MLflow's ``experiments.name`` is ``VARCHAR(256)`` on PostgreSQL; NUL it refuses.)"""


class TuningJob(msgspec.Struct, kw_only=True, frozen=True):
    """A tuning job and its progress, as stored.

    Attributes:
        id: the job id.
        study_name: the Optuna study it runs.
        request: what was asked.
        status: lifecycle status.
        n_trials: trials asked for.
        trials_done: trials finished so far (any state).
        trials_pruned: of which pruned.
        trials_failed: of which failed.
        best_value: best objective value so far.
        best_params: its hyperparameters.
        best_trial: its trial number.
        mlflow_run_id: the study's MLflow run (trials are its children).
        error: why the job failed.
        created_at: creation time (UTC).
        updated_at: last progress (UTC).
    """

    id: str
    study_name: str
    request: TuningJobRequest
    status: JobStatus
    n_trials: int
    trials_done: int = 0
    trials_pruned: int = 0
    trials_failed: int = 0
    best_value: float | None = None
    best_params: dict[str, Any] | None = None
    best_trial: int | None = None
    mlflow_run_id: str | None = None
    error: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
