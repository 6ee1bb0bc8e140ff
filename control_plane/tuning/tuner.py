"""The :class:`HyperparameterTuner`: an Optuna study over a search space, logged to MLflow.

Sampling is TPE (seeded), pruning the median rule: a trial whose intermediate value is worse
than the median of earlier trials at the same step stops. The objective receives the trial
and the configuration sampled from the space, so any model or metric can be tuned; the
default objective (:class:`~control_plane.tuning.estimators.HoldoutObjective`) reports
intermediate values for LightGBM and XGBoost.

Parallelism: ``n_jobs`` runs trials on threads of one process (the in-memory study is
enough). Several processes share one study through Optuna's RDB storage on PostgreSQL
(``tuning.storage``); SQLite is refused there because concurrent writers lock it. Create
the study once (:meth:`HyperparameterTuner.create_study`, which also opens the study's MLflow
run and records its id in the study), then start any number of workers with the same study
name: each loads the study and logs its trials under the same MLflow run.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import optuna
from optuna.pruners import MedianPruner
from optuna.samplers import TPESampler
from optuna.trial import FrozenTrial, TrialState

from control_plane.tracking.models import RunStatus
from control_plane.tuning.estimators import build_estimator
from control_plane.tuning.models import BestConfiguration, Progress
from control_plane.tuning.spaces import ParamSpec, check_model, search_space, suggest
from control_plane.tuning.trial_logger import MlflowTrialLogger
from modelyard.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from control_plane.tracking.tracker import ExperimentTracker

Objective = Callable[[optuna.Trial, dict[str, Any]], float]
RUN_ID_ATTR = "mlflow_run_id"


def optuna_storage(url: str) -> optuna.storages.BaseStorage | None:
    """Optuna's storage for ``url``: ``None`` (in memory) when empty, else RDB storage.

    Raises:
        InvalidArgument: ``url`` is SQLite (locks under parallel workers) or not PostgreSQL.
    """
    if not url:
        return None
    if url.startswith("sqlite"):
        raise InvalidArgument(
            f"tuning storage {url!r}: SQLite locks under parallel workers; "
            "use postgresql://... or leave it empty for an in-memory study"
        )
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise InvalidArgument(f"tuning storage {url!r}: expected postgresql://USER@HOST/DB")
    return optuna.storages.RDBStorage(
        f"postgresql+psycopg://{rest}", engine_kwargs={"pool_pre_ping": True}
    )


class _ProgressCallback:
    """Counts this call's finished trials, tracks the best, and stops on request."""

    def __init__(
        self,
        total: int,
        direction: str,
        on_progress: Callable[[Progress], None] | None,
        stop: threading.Event | None,
    ) -> None:
        self.progress = Progress(total=total)
        self._minimize = direction == "minimize"
        self._on_progress = on_progress
        self._stop = stop
        self._lock = threading.Lock()

    def _better(self, value: float) -> bool:
        best = self.progress.best_value
        return best is None or (value < best if self._minimize else value > best)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        with self._lock:
            progress = self.progress
            progress.finished += 1
            progress.completed += trial.state is TrialState.COMPLETE
            progress.pruned += trial.state is TrialState.PRUNED
            progress.failed += trial.state is TrialState.FAIL
            value = trial.value if trial.state is TrialState.COMPLETE else None
            if value is not None and self._better(value):
                progress.best_value = trial.value
                progress.best_params = dict(trial.params)
                progress.best_trial = trial.number
            if self._on_progress is not None:
                self._on_progress(progress)
        if self._stop is not None and self._stop.is_set():
            study.stop()


class HyperparameterTuner:
    """Tune one model family's hyperparameters with Optuna, every trial logged to MLflow.

    Args:
        model: ``logistic_regression``, ``lightgbm`` or ``xgboost`` (default space, refit).
        space: overrides of the default space (``None`` drops a name).
        replace_space: tune only ``space``.
        study_name: the study; required to share it between processes.
        storage: Optuna RDB URL (PostgreSQL) or ``""`` for an in-memory study.
        direction: ``minimize`` or ``maximize`` the objective.
        seed: seed of the TPE sampler and of the refitted estimator.
        tracker: where trials are logged (no logging when ``None``).
        experiment: the MLflow experiment of the study's run.

    Raises:
        InvalidArgument: unknown model, empty or invalid space, bad direction or storage.
    """

    def __init__(
        self,
        model: str,
        *,
        space: Mapping[str, ParamSpec | None] | None = None,
        replace_space: bool = False,
        study_name: str | None = None,
        storage: str = "",
        direction: str = "minimize",
        seed: int | None = 0,
        tracker: ExperimentTracker | None = None,
        experiment: str = "tuning",
    ) -> None:
        if direction not in ("minimize", "maximize"):
            raise InvalidArgument(f"direction {direction!r}: expected minimize or maximize")
        self.model = check_model(model)
        self.space = search_space(model, space, replace=replace_space)
        self.direction = direction
        self.seed = seed
        self.tracker = tracker
        self.experiment = experiment
        self._storage = optuna_storage(storage)
        self._study_name = study_name
        self._study: optuna.Study | None = None
        self._owned_run: str | None = None
        self._worker = f"{socket.gethostname()}:{os.getpid()}"

    def create_study(self) -> optuna.Study:
        """Create (or load) the study, and open its MLflow run unless it has one."""
        if self._study is None:
            self._study = optuna.create_study(
                storage=self._storage,
                sampler=TPESampler(seed=self.seed),
                pruner=MedianPruner(n_startup_trials=3, n_warmup_steps=0),
                study_name=self._study_name,
                direction=self.direction,  # type: ignore[arg-type]
                load_if_exists=True,
            )
        if self.tracker is not None and RUN_ID_ATTR not in self._study.user_attrs:
            self._owned_run = self._open_study_run(self._study)
            self._study.set_user_attr(RUN_ID_ATTR, self._owned_run)
        return self._study

    @property
    def study_name(self) -> str:
        """The study's name (generated by Optuna when none was given)."""
        return self.create_study().study_name

    @property
    def study_run_id(self) -> str | None:
        """The study's MLflow run, parent of every trial run."""
        run_id = self.create_study().user_attrs.get(RUN_ID_ATTR)
        return None if run_id is None else str(run_id)

    def _open_study_run(self, study: optuna.Study) -> str:
        assert self.tracker is not None
        run = self.tracker.start_run(
            self.experiment,
            run_name=f"study-{study.study_name}",
            tags={"optuna.study": study.study_name, "modelyard.model": self.model},
        )
        described = {f"space.{name}": _describe(spec) for name, spec in self.space.items()}
        run.log_params({"model": self.model, "direction": self.direction, **described})
        return run.run_id

    def optimize(
        self,
        objective: Objective,
        *,
        n_trials: int,
        n_jobs: int = 1,
        timeout: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Progress:
        """Run ``n_trials`` trials of ``objective`` (``n_jobs`` at a time, on threads).

        Args:
            objective: called with the trial and the sampled configuration; returns the
                value to optimize. It may call ``trial.report`` / ``trial.should_prune``.
            n_trials: trials this call runs (other workers of the study run their own).
            n_jobs: trials run side by side on threads.
            timeout: stop starting trials after this many seconds.
            on_progress: called (under a lock) after every finished trial.
            stop: when set, no new trial starts; running ones finish.

        Returns:
            The progress of this call.

        Raises:
            InvalidArgument: ``n_trials`` or ``n_jobs`` below 1.
        """
        if n_trials < 1 or n_jobs < 1:
            raise InvalidArgument(f"n_trials={n_trials}, n_jobs={n_jobs}: both must be >= 1")
        study = self.create_study()
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = []
        run_id = self.study_run_id
        if self.tracker is not None and run_id is not None:
            callbacks.append(MlflowTrialLogger(self.tracker, self.experiment, run_id))
        counter = _ProgressCallback(n_trials, self.direction, on_progress, stop)
        callbacks.append(counter)

        def run_trial(trial: optuna.Trial) -> float:
            # Which process ran the trial, for studies shared by several workers.
            trial.set_user_attr("worker", self._worker)
            return objective(trial, suggest(trial, self.space))

        try:
            study.optimize(
                run_trial, n_trials=n_trials, n_jobs=n_jobs, timeout=timeout, callbacks=callbacks
            )
        except BaseException:
            self.finish(RunStatus.FAILED)
            raise
        self.finish()
        return counter.progress

    def finish(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Record the best configuration on the study's run and end it, if this tuner opened it.

        Workers that joined a study leave its run to the process that created it.
        """
        if self.tracker is None or self._owned_run is None:
            return
        try:
            best = self.best_configuration()
        except FailedPrecondition:
            best = None
        if best is not None:
            self.tracker.log_params(
                self._owned_run, {f"best.{k}": v for k, v in best.params.items()}
            )
            self.tracker.log_metrics(
                self._owned_run,
                {"best_value": best.value, "best_trial": float(best.trial_number)},
            )
        self.tracker.end_run(self._owned_run, status)
        self._owned_run = None

    def close(self) -> None:
        """Release the storage's database connections (RDB storage)."""
        if isinstance(self._storage, optuna.storages.RDBStorage):
            self._storage.engine.dispose()

    def best_configuration(self) -> BestConfiguration:
        """The best params and value over the study's completed trials (all workers).

        Raises:
            FailedPrecondition: no trial has completed yet.
        """
        study = self.create_study()
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not completed:
            raise FailedPrecondition(f"study {study.study_name!r} has no completed trial yet")
        sign = 1.0 if self.direction == "minimize" else -1.0
        # Ties go to the earliest trial, as Optuna's own best_trial does.
        _, _, value, best = min(
            (sign * trial.value, trial.number, trial.value, trial)
            for trial in completed
            if trial.value is not None
        )
        return BestConfiguration(
            params=dict(best.params),
            value=float(value),
            trial_number=best.number,
            completed_trials=len(completed),
        )

    def refit(self, features: Any, labels: Any) -> Any:
        """The model family fitted on all of ``features``/``labels`` with the best params.

        Raises:
            FailedPrecondition: no trial has completed yet.
        """
        best = self.best_configuration()
        estimator = build_estimator(self.model, best.params, seed=self.seed or 0)
        estimator.fit(features, labels)
        return estimator


def _describe(spec: ParamSpec) -> str:
    """A range as one short string for the study run's params."""
    if hasattr(spec, "choices"):
        return f"choice{list(spec.choices)}"
    scale = " log" if spec.log else ""
    return f"{type(spec).__name__}[{spec.low}, {spec.high}]{scale}"
