"""Shapes of retraining: the per-model spec, the runs, their steps and their decision."""

from __future__ import annotations

import datetime as dt
import enum
import sys
from typing import Annotated, Literal

import msgspec

from modelyard.enums import TriggerType
from modelyard.models import FiniteFloat, InputValue, Seed, Text

Fraction = Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]

DEFAULT_SCHEDULE = "0 3 * * 1"
"""Weekly, Monday 03:00 UTC."""


class TuningOptions(InputValue, kw_only=True, frozen=True):
    """Tune the trainer's hyperparameters with Optuna before the final fit.

    Attributes:
        trials: trials to run.
        timeout_s: stop starting trials after this many seconds (0: no limit).
    """

    trials: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    timeout_s: NonNegative = 0.0


class HoldoutPolicy(InputValue, kw_only=True, frozen=True):
    """How the evaluation holdout is cut from the loaded data (stratified for classifiers).

    Attributes:
        fraction: share of the rows held out; the candidate never trains on them.
        seed: the split's random state (the same seed gives the same holdout).
    """

    fraction: Fraction = 0.2
    seed: Seed = 0


class RetrainingSpec(InputValue, kw_only=True, frozen=True):
    """How one model is retrained.

    Attributes:
        data: where the training data comes from: a ``.csv`` / ``.parquet`` path, or a Python
            entry point ``module:function`` returning a pandas DataFrame.
        target: the label column of that data.
        trainer: a built-in family (``lightgbm``, ``xgboost``, ``logistic_regression``) or an
            entry point ``module:function(features, labels, params) -> fitted estimator``.
        params: hyperparameters for the trainer (tuning overrides what it searches).
        primary_metric: the metric that decides (``auc``, ``accuracy``, ``f1``, ``log_loss``,
            ``rmse``, ``mae``).
        direction: whether higher or lower of the primary metric is better.
        min_improvement: how much better than Production the candidate must be (absolute, in
            the metric's units).
        guardrails: metric -> the most it may get worse than Production (absolute); any guardrail
            breached rejects the candidate.
        tune: tune before the final fit, or not at all.
        holdout: the evaluation holdout.
        schedule: cron expression (UTC) or ``every <n><s|m|h|d>`` for scheduled retraining.
        scheduled: whether the schedule fires at all.
    """

    data: str
    target: str
    trainer: str = "lightgbm"
    params: dict[str, FiniteFloat | int | str | bool] = msgspec.field(default_factory=dict)
    primary_metric: str = "auc"
    direction: Literal["maximize", "minimize"] = "maximize"
    min_improvement: NonNegative = 0.0
    guardrails: dict[str, NonNegative] = msgspec.field(default_factory=dict)
    tune: TuningOptions | None = None
    holdout: HoldoutPolicy = HoldoutPolicy()
    schedule: str = DEFAULT_SCHEDULE
    scheduled: bool = True


class TriggerRequest(InputValue, kw_only=True, frozen=True):
    """Body of ``POST /v1/retraining/runs``."""

    model: str
    trigger_type: TriggerType = TriggerType.MANUAL
    reason: Text = ""


class RunStatus(enum.Enum):
    """Lifecycle of a retraining run.

    ``promoted``: the candidate is better and now in Staging. ``rejected``: it was evaluated and
    is not better (Production untouched). ``failed``: a step raised (``resumable`` says whether
    ``resume`` may start it again).
    """

    PENDING = "pending"
    RUNNING = "running"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    FAILED = "failed"


ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING)

STEPS = ("load_data", "train", "convert", "evaluate", "register", "decide")
"""The steps of a run, in order."""


class StepRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One step of a run.

    Attributes:
        name: one of :data:`STEPS`.
        status: ``running``, ``succeeded`` or ``failed``.
        started_at: when it started (UTC).
        finished_at: when it ended.
        log: what it did, one line per fact.
        error: why it failed.
    """

    name: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    log: tuple[str, ...] = ()
    error: str | None = None


class TriggerRecord(msgspec.Struct, kw_only=True, frozen=True):
    """A trigger: the one that started a run, or a later one attached to it (de-duplicated)."""

    trigger_type: TriggerType
    reason: str
    at: dt.datetime
    due_at: dt.datetime | None = None
    """The scheduler's due time, for scheduled triggers."""


class Comparison(msgspec.Struct, kw_only=True, frozen=True):
    """The candidate and the current Production version on the same holdout.

    Attributes:
        holdout_rows: rows of the holdout.
        candidate: metric -> value of the candidate.
        production: metric -> value of the Production version (empty when there is none).
        production_version: the version compared against.
    """

    holdout_rows: int
    candidate: dict[str, float]
    production: dict[str, float]
    production_version: int | None


class RetrainingRun(msgspec.Struct, kw_only=True, frozen=True):
    """One retraining run of one model."""

    id: str
    model: str
    status: RunStatus
    trigger: TriggerRecord
    attached: tuple[TriggerRecord, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    parent_version: int | None = None
    candidate_version: int | None = None
    comparison: Comparison | None = None
    decision: str | None = None
    error: str | None = None
    resumable: bool = False
    attempt: int = 1
    created_at: dt.datetime
    updated_at: dt.datetime
    heartbeat_at: dt.datetime | None = None


class RunPage(msgspec.Struct, kw_only=True, frozen=True):
    """A page of runs, newest first."""

    items: list[RetrainingRun]
    limit: int
    offset: int
