"""The :class:`ExperimentTracker`: MLflow's client API behind modelyard's vocabulary.

One ``MlflowClient`` is bound to one tracking URI; nothing here touches MLflow's fluent,
process-global "active run", so trackers are independent of each other and safe to share
between threads (a tuning study logs its trials from several threads at once).

MLflow's own store picks ``./mlruns`` as artifact root when none is given; every experiment
this tracker creates therefore gets an explicit artifact location under the configured
``artifact_root``. MLflow failures are translated once, in :func:`_translated`: a filter or
order clause MLflow rejects becomes :class:`~modelyard.errors.InvalidArgument` naming the
clause, an unknown run or experiment :class:`~modelyard.errors.NotFound`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, ViewType
from mlflow.exceptions import MlflowException
from mlflow.utils.search_utils import SearchUtils

from control_plane.tracking.active_run import ActiveRun
from control_plane.tracking.models import Experiment, MetricPoint, Run, RunComparison, RunStatus
from modelyard.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from modelyard.settings import TrackingSettings

PARENT_RUN_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT_ID = "0"
"""MLflow's own ``Default`` experiment, made with the store, its artifacts in ``./mlruns``."""
MAX_RESULTS_LIMIT = 50_000
MAX_FILTER_CLAUSES = 30
"""Clauses of one search filter: each is a join in MLflow's query (PostgreSQL took 30 s for
200, and SQLite refuses more than 200 FROM terms)."""
MAX_ORDER_CLAUSES = 20
"""Order clauses of one search."""
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000


@contextmanager
def _translated(subject: str, kind: str = "run", name: str = "") -> Iterator[None]:
    """Turn MLflow's error codes into modelyard's domain errors; a store error MLflow wraps as
    ``INTERNAL_ERROR`` whose cause is the data (a number beyond the column, NUL in text: a
    fuzz on PostgreSQL-backed MLflow, 2026-12-06) is the caller's too."""
    try:
        yield
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFound(kind, name) from None
        if error.error_code == "INVALID_PARAMETER_VALUE":
            raise InvalidArgument(f"{subject}: {error.message}") from None
        cause = _data_cause(error)
        if cause is not None:
            raise InvalidArgument(
                f"{subject}: the tracking store cannot hold a value of it ({type(cause).__name__})"
            ) from None
        raise


def _data_cause(error: BaseException) -> BaseException | None:
    """The data error behind ``error``, if one is in its chain: an ``OverflowError`` (SQLite's
    driver) or a driver's data error (PostgreSQL: SQLSTATE class 22)."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OverflowError) or type(cause).__name__ == "DataError":
            return cause
        code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(code, str) and code.startswith("22"):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _search_bounds(filter: str, order_by: Sequence[str]) -> None:
    """Refuse what no store should be asked: NUL (PostgreSQL refused it with its own error,
    SQLite answered; experiment names are checked where they are looked up,
    :meth:`ExperimentTracker.experiment_id`), more order clauses than :data:`MAX_ORDER_CLAUSES`
    (SQLite failed at 200: "too many FROM clause terms")."""
    texts = [("filter", filter)] + [("order_by", clause) for clause in order_by]
    for what, text in texts:
        if "\x00" in text:
            raise InvalidArgument(f"{what} {text[:100]!r} holds NUL")
    if len(order_by) > MAX_ORDER_CLAUSES:
        raise InvalidArgument(f"{len(order_by)} order_by clauses; at most {MAX_ORDER_CLAUSES}")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _artifact_location(root: str, experiment: str) -> str | None:
    """Where an experiment's artifacts go: a folder per experiment under ``root``."""
    if not root:
        return None
    folder = re.sub(r"[^\w.-]", "_", experiment)
    if "://" in root:
        return f"{root.rstrip('/')}/{folder}"
    return (Path(root).resolve() / folder).as_uri()


def _to_run(run: Any) -> Run:
    info, data = run.info, run.data
    return Run(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        run_name=info.run_name or "",
        status=RunStatus(info.status),
        start_time_ms=info.start_time or 0,
        end_time_ms=info.end_time,
        parent_run_id=data.tags.get(PARENT_RUN_TAG),
        artifact_uri=info.artifact_uri or "",
        params=dict(data.params),
        metrics={key: float(value) for key, value in data.metrics.items()},
        tags={k: v for k, v in data.tags.items() if not k.startswith("mlflow.")},
    )


def _to_experiment(experiment: Any) -> Experiment:
    return Experiment(
        experiment_id=experiment.experiment_id,
        name=experiment.name,
        artifact_location=experiment.artifact_location,
        lifecycle_stage=experiment.lifecycle_stage,
    )


class ExperimentTracker:
    """Experiments, runs, parameters, metrics and artifacts in one MLflow tracking store.

    Args:
        tracking_uri: ``sqlite:///path``, ``postgresql://...`` or an MLflow server URL.
        artifact_root: folder (or URI) under which new experiments keep their artifacts;
            empty to let an MLflow tracking server decide.
    """

    def __init__(self, tracking_uri: str, artifact_root: str = "") -> None:
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if "://" not in tracking_uri or tracking_uri.startswith("file:"):
            raise InvalidArgument(
                f"tracking URI {tracking_uri!r}: the file store is deprecated; "
                "use sqlite:///PATH, a database URL or an MLflow server URL"
            )
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._mlflow: MlflowClient | None = None
        self._lock = threading.Lock()

    @property
    def _client(self) -> MlflowClient:
        # NOTE: opened on first use: building the client migrates a new store (seconds), which
        # a control plane that never touches tracking should not pay for at start-up.
        with self._lock:
            if self._mlflow is None:
                self._mlflow = MlflowClient(tracking_uri=self.tracking_uri)
            return self._mlflow

    @classmethod
    def from_settings(cls, settings: TrackingSettings) -> ExperimentTracker:
        """The tracker of the ``tracking`` settings section."""
        return cls(settings.uri, settings.artifact_root)

    def experiment_id(self, name: str, *, create: bool = True) -> str:
        """The id of experiment ``name``, created (with its artifact folder) if missing.

        Raises:
            NotFound: the experiment does not exist and ``create`` is false.
            InvalidArgument: the name holds NUL (PostgreSQL-backed MLflow failed with its own
                error, a 500; SQLite's answered 404).
        """
        if "\x00" in name:
            raise InvalidArgument(f"experiment name {name[:100]!r} holds NUL")
        found = self._client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        if not create:
            raise NotFound("experiment", name)
        try:
            root = self.artifact_root
            if self.tracking_uri.startswith(("http://", "https://")) and "://" not in root:
                root = ""  # a tracking server owns its artifact store; a local folder is wrong
            location = _artifact_location(root, name)
            return str(self._client.create_experiment(name, artifact_location=location))
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another thread or process created it between our lookup and our insert.
            raced = self._client.get_experiment_by_name(name)
            if raced is None:
                raise
            return str(raced.experiment_id)

    def list_experiments(self) -> list[Experiment]:
        """Every active experiment, by name."""
        experiments: list[Experiment] = []
        token: str | None = None
        while True:
            page = self._client.search_experiments(
                view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
            )
            experiments.extend(_to_experiment(item) for item in page)
            token = page.token
            if not token:
                return sorted(experiments, key=lambda item: item.name)

    def start_run(
        self,
        experiment: str,
        *,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        start_time_ms: int | None = None,
    ) -> ActiveRun:
        """Start a run in ``experiment`` (created if missing); nested under ``parent_run_id``.

        Raises:
            NotFound: the parent run does not exist.
        """
        all_tags = dict(tags or {})
        reserved = sorted(key for key in all_tags if key.startswith("mlflow."))
        if reserved:  # NOTE: "mlflow.parentRunId" as a tag set any parent, unchecked
            raise InvalidArgument(f"tags {reserved} are MLflow's own (the mlflow. prefix)")
        if parent_run_id is not None:
            self.get_run(parent_run_id)
            all_tags[PARENT_RUN_TAG] = parent_run_id
        experiment_id = self.experiment_id(experiment)
        if experiment_id == DEFAULT_EXPERIMENT_ID and self.artifact_root:
            raise InvalidArgument(
                "MLflow's Default experiment keeps its artifacts in ./mlruns, outside the "
                "artifact root; name an experiment of your own"
            )
        with _translated(f"run {run_name!r}"):
            created = self._client.create_run(
                experiment_id,
                start_time=start_time_ms or _now_ms(),
                tags=all_tags,
                run_name=run_name,
            )
        return ActiveRun(self, created.info.run_id, experiment)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Log parameters (stored as strings; a parameter is written once per run).

        Raises:
            InvalidArgument: a name is invalid or a parameter is re-logged with a new value.
            NotFound: the run does not exist.
        """
        items = [Param(str(key), str(value)) for key, value in params.items()]
        for start in range(0, len(items), _PARAMS_PER_BATCH):
            with _translated(f"params of run {run_id}", name=run_id):
                self._client.log_batch(run_id, params=items[start : start + _PARAMS_PER_BATCH])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], *, step: int = 0) -> None:
        """Log metric values at ``step`` (the history keeps every step).

        Raises:
            InvalidArgument: a name or value is invalid.
            NotFound: the run does not exist.
        """
        now = _now_ms()
        items = [Metric(str(key), float(value), now, step) for key, value in metrics.items()]
        for start in range(0, len(items), _METRICS_PER_BATCH):
            with _translated(f"metrics of run {run_id}", name=run_id):
                self._client.log_batch(run_id, metrics=items[start : start + _METRICS_PER_BATCH])

    def log_metric_series(self, run_id: str, key: str, values: Mapping[int, float]) -> None:
        """Log one metric's values at several steps (step -> value) in one call.

        Raises:
            InvalidArgument: the name or a value is invalid.
            NotFound: the run does not exist.
        """
        now = _now_ms()
        items = [Metric(key, float(value), now, int(step)) for step, value in values.items()]
        for start in range(0, len(items), _METRICS_PER_BATCH):
            with _translated(f"metric {key!r} of run {run_id}", name=run_id):
                self._client.log_batch(run_id, metrics=items[start : start + _METRICS_PER_BATCH])

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a local file or folder into the run's artifacts.

        Raises:
            InvalidArgument: ``path`` does not exist.
            NotFound: the run does not exist.
        """
        if not Path(path).exists():
            raise InvalidArgument(f"artifact {str(path)!r} does not exist")
        with _translated(f"artifact {path}", name=run_id):
            self._client.log_artifact(run_id, str(path), artifact_path)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """Paths of the run's artifacts (under ``path``)."""
        with _translated("artifacts", name=run_id):
            return [item.path for item in self._client.list_artifacts(run_id, path)]

    def end_run(
        self, run_id: str, status: RunStatus = RunStatus.FINISHED, end_time_ms: int | None = None
    ) -> None:
        """Mark the run ended with ``status``.

        Raises:
            NotFound: the run does not exist.
        """
        with _translated(f"end of run {run_id}", name=run_id):
            self._client.set_terminated(run_id, status.value, end_time_ms or _now_ms())

    def get_run(self, run_id: str) -> Run:
        """The run with its parameters, latest metrics and tags.

        Raises:
            NotFound: no run has this id.
        """
        with _translated(f"run {run_id!r}", name=run_id):
            return _to_run(self._client.get_run(run_id))

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of metric ``key``, by step.

        Raises:
            NotFound: no run has this id.
        """
        self.get_run(run_id)
        with _translated(f"metric {key!r}", name=run_id):
            history = self._client.get_metric_history(run_id, key)
        points = [
            MetricPoint(step=m.step, value=m.value, timestamp_ms=m.timestamp) for m in history
        ]
        return sorted(points, key=lambda point: (point.step, point.timestamp_ms))

    def search_runs(
        self,
        experiments: Sequence[str] = (),
        *,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int = 100,
    ) -> list[Run]:
        """Runs of ``experiments`` (all when empty) matching MLflow's filter grammar.

        Args:
            experiments: experiment names.
            filter: e.g. ``metrics.auc > 0.8 and params.model = 'lgbm'``.
            order_by: e.g. ``["metrics.auc DESC", "params.lr", "attributes.start_time"]``.
            max_results: 1 to 50 000.

        Raises:
            InvalidArgument: the filter, an order clause or ``max_results`` is invalid; the
                message names which and why.
            NotFound: an experiment does not exist.
        """
        if not 1 <= max_results <= MAX_RESULTS_LIMIT:
            raise InvalidArgument(f"max_results={max_results}: expected 1 to {MAX_RESULTS_LIMIT}")
        _search_bounds(filter, order_by)
        with _translated(f"invalid filter {filter!r}"):
            clauses = SearchUtils.parse_search_filter(filter)  # type: ignore[no-untyped-call]
        if len(clauses) > MAX_FILTER_CLAUSES:
            raise InvalidArgument(
                f"the filter has {len(clauses)} clauses; at most {MAX_FILTER_CLAUSES}"
            )
        for clause in order_by:
            with _translated(f"invalid order_by clause {clause!r}"):
                SearchUtils.parse_order_by_for_search_runs(clause)  # type: ignore[no-untyped-call]
        if experiments:
            ids = [self.experiment_id(name, create=False) for name in experiments]
        else:
            ids = [item.experiment_id for item in self.list_experiments()]
        subject = f"invalid search (filter {filter!r}, order_by {list(order_by)!r})"
        with _translated(subject):
            found = self._client.search_runs(
                ids, filter, ViewType.ACTIVE_ONLY, max_results, list(order_by)
            )
        return [_to_run(run) for run in found]

    def compare_runs(self, run_ids: Sequence[str]) -> RunComparison:
        """Every parameter and metric of every run, side by side (``None`` where missing).

        Raises:
            InvalidArgument: no run ids were given.
            NotFound: a run does not exist (the message names it).
        """
        if not run_ids:
            raise InvalidArgument("compare_runs needs at least one run id")
        runs = [self.get_run(run_id) for run_id in run_ids]
        param_names = sorted({name for run in runs for name in run.params})
        metric_names = sorted({name for run in runs for name in run.metrics})
        return RunComparison(
            run_ids=[run.run_id for run in runs],
            run_names=[run.run_name for run in runs],
            params={name: [run.params.get(name) for run in runs] for name in param_names},
            metrics={name: [run.metrics.get(name) for run in runs] for name in metric_names},
        )
