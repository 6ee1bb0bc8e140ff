"""Shapes of experiment tracking: experiments, runs, searches and run comparisons."""

from __future__ import annotations

import enum

import msgspec


class RunStatus(enum.Enum):
    """Lifecycle of a run (MLflow's run statuses)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Experiment(msgspec.Struct, kw_only=True, frozen=True):
    """A named group of runs.

    Attributes:
        experiment_id: MLflow's identifier.
        name: the unique name.
        artifact_location: where the runs' artifacts go.
        lifecycle_stage: ``active`` or ``deleted``.
    """

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str


class Run(msgspec.Struct, kw_only=True, frozen=True):
    """One tracked run with its latest metric values.

    Attributes:
        run_id: unique identifier.
        experiment_id: the experiment it belongs to.
        run_name: human-readable name.
        status: lifecycle status.
        start_time_ms: start, milliseconds since the epoch (UTC).
        end_time_ms: end, or ``None`` while running.
        parent_run_id: the enclosing run of a nested run.
        artifact_uri: root of the run's artifacts.
        params: every logged parameter (MLflow stores parameters as strings).
        metrics: the latest value of every logged metric.
        tags: user tags (MLflow's system tags ``mlflow.*`` excluded).
    """

    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time_ms: int
    end_time_ms: int | None
    parent_run_id: str | None
    artifact_uri: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


class MetricPoint(msgspec.Struct, kw_only=True, frozen=True):
    """One logged value of a metric."""

    step: int
    value: float
    timestamp_ms: int


class RunComparison(msgspec.Struct, kw_only=True, frozen=True):
    """Runs side by side: one column per run, one row per parameter or metric.

    Every row has one cell per run, in ``run_ids`` order; a run that never logged the
    parameter or metric has ``None`` in its cell, so a missing value is never confused with
    an absent row.

    Attributes:
        run_ids: the compared runs, in the order asked for.
        run_names: their names, same order.
        params: parameter name -> value per run.
        metrics: metric name -> latest value per run.
    """

    run_ids: list[str]
    run_names: list[str]
    params: dict[str, list[str | None]]
    metrics: dict[str, list[float | None]]


class RunSearch(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A search over runs, decoded from outside input.

    Attributes:
        experiments: experiment names to search (all experiments when empty).
        filter: MLflow filter grammar, e.g. ``metrics.auc > 0.8 and params.model = 'lgbm'``.
        order_by: MLflow order clauses, e.g. ``metrics.auc DESC``, ``params.lr``,
            ``attributes.start_time``.
        max_results: at most this many runs.
    """

    experiments: list[str] = []
    filter: str = ""
    order_by: list[str] = []
    max_results: int = 100
