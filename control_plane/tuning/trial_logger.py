"""Every finished Optuna trial becomes an MLflow run nested under the study's run.

A study callback (Optuna calls it in the thread that ran the trial, once the trial is
final) writes the trial's params, its objective value, its state, its duration and its
number, plus the intermediate values the pruner saw, as a step series. Written here because
optuna-integration's ``MLflowCallback`` is deprecated and uses MLflow's global fluent state.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from optuna.trial import TrialState

from control_plane.tracking.models import RunStatus

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from control_plane.tracking.tracker import ExperimentTracker

RUN_STATUS_BY_STATE = {
    TrialState.COMPLETE: RunStatus.FINISHED,
    TrialState.PRUNED: RunStatus.KILLED,
    TrialState.FAIL: RunStatus.FAILED,
}


def _ms(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


class MlflowTrialLogger:
    """Optuna callback logging each trial as a child run of ``parent_run_id``.

    Args:
        tracker: the MLflow tracker.
        experiment: experiment of the study's run.
        parent_run_id: the study's run.
    """

    def __init__(self, tracker: ExperimentTracker, experiment: str, parent_run_id: str) -> None:
        self.tracker = tracker
        self.experiment = experiment
        self.parent_run_id = parent_run_id

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Log ``trial`` (a finished trial of ``study``)."""
        tags = {
            "optuna.study": study.study_name,
            "optuna.trial_number": str(trial.number),
            "optuna.trial_state": trial.state.name,
        }
        run = self.tracker.start_run(
            self.experiment,
            run_name=f"trial-{trial.number}",
            parent_run_id=self.parent_run_id,
            tags=tags,
            start_time_ms=_ms(trial.datetime_start),
        )
        run.log_params(trial.params)
        duration = trial.duration.total_seconds() if trial.duration is not None else 0.0
        metrics = {"trial_number": float(trial.number), "duration_s": duration}
        if trial.value is not None:
            metrics["objective"] = trial.value
        run.log_metrics(metrics)
        if trial.intermediate_values:
            self.tracker.log_metric_series(
                run.run_id, "intermediate_value", trial.intermediate_values
            )
        status = RUN_STATUS_BY_STATE.get(trial.state, RunStatus.FAILED)
        self.tracker.end_run(run.run_id, status, _ms(trial.datetime_complete))
