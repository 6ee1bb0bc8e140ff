"""The steps of one retraining run: load data → train (optionally tune) → convert → evaluate →
register → decide.

The synchronous work (reading data, fitting, converting, scoring) runs in helper threads of the
worker process (:mod:`control_plane.retraining.worker`), never in the control plane's API
process. Each step is recorded before and after it runs (:class:`StepRecorder`), with its log
lines and its error, so ``GET /v1/retraining/runs/{id}`` shows where a run is and why it ended.

What the candidate inherits from the version it retrains (the newest registered version of the
model, its *parent*): the input columns, the feature references of its lineage and its model
card, which is re-drafted with the holdout metrics. The candidate is registered with stage None
and a draft card; only :func:`decide` moves it, and only to Staging — Production always needs an
approved card (a person).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from control_plane.retraining.evaluation import (
    classification_metrics,
    decide,
    measured,
    regression_metrics,
)
from control_plane.retraining.models import Comparison, RetrainingRun, RetrainingSpec
from modelyard.enums import ModelStage
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.models import (
    DatasetInfo,
    DatasetRef,
    ModelLineage,
    PerformanceMetric,
    RegisteredModel,
)

if TYPE_CHECKING:
    import pandas as pd

    from control_plane.app import ControlPlaneServices
    from control_plane.retraining.recorder import StepRecorder
    from control_plane.security.models import Principal
    from converters import ConversionResult

BUILT_IN_TRAINERS = ("lightgbm", "xgboost", "logistic_regression")
CONVERSION_SAMPLE_ROWS = 2000
REFERENCE_ROWS = 5000
"""Training rows the candidate's drift reference profile is built from."""


@dataclass
class Workspace:
    """What the steps hand to each other."""

    frame: pd.DataFrame | None = None
    dataset: DatasetRef | None = None
    features: tuple[str, ...] = ()
    classification: bool = True
    train_x: pd.DataFrame | None = None
    train_y: np.ndarray | None = None
    holdout_x: pd.DataFrame | None = None
    holdout_y: np.ndarray | None = None
    estimator: Any = None
    hyperparameters: dict[str, Any] | None = None
    mlflow_run_id: str = ""
    conversion: ConversionResult | None = None
    comparison: Comparison | None = None
    candidate: RegisteredModel | None = None


def entry_point(reference: str) -> Any:
    """The object named by ``module:attribute``.

    Raises:
        InvalidArgument: not of that form, or the module or attribute does not exist.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise InvalidArgument(f"{reference!r} is not an entry point 'module:function'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise InvalidArgument(f"entry point {reference!r} cannot be loaded: {error}") from None


def load_frame(source: str) -> pd.DataFrame:
    """The training table: a CSV or Parquet file, or what an entry point returns.

    Raises:
        InvalidArgument: a missing file, an unknown format, or an entry point that does not
            return a DataFrame.
    """
    import pandas as pd

    path = Path(source)
    if path.suffix in (".csv", ".parquet"):
        if not path.is_file():
            raise InvalidArgument(f"training data {source!r} does not exist")
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    frame = entry_point(source)()
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgument(f"{source!r} returned {type(frame).__name__}, not a DataFrame")
    return frame


def dataset_uri(source: str) -> str:
    """A file's absolute ``file:`` URI, or the entry point as given."""
    path = Path(source)
    return path.resolve().as_uri() if path.suffix in (".csv", ".parquet") else source


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 of a table's values and index (its lineage identity)."""
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    return hashlib.sha256(hashed).hexdigest()


class RetrainingPipeline:
    """The steps of one run, over the control plane's services.

    Args:
        services: the control-plane services of the worker process.
        run: the run being executed.
        spec: the model's retraining spec.
        principal: who registers and transitions (the ``retraining`` service principal).
        recorder: records each step's start, log and end.
    """

    def __init__(
        self,
        services: ControlPlaneServices,
        run: RetrainingRun,
        spec: RetrainingSpec,
        principal: Principal,
        recorder: StepRecorder,
    ) -> None:
        self._services = services
        self._run = run
        self._spec = spec
        self._principal = principal
        self._recorder = recorder
        self._work = Workspace()

    async def execute(self, parent: RegisteredModel) -> tuple[bool, str]:
        """Run every step; whether the candidate was promoted, and why.

        Raises:
            ModelyardError: a step failed (the recorder has recorded it).
        """
        steps = (
            ("load_data", lambda log: self._load_data(parent, log)),
            ("train", self._train),
            ("convert", self._convert),
            ("evaluate", self._evaluate),
            ("register", lambda log: self._register(parent, log)),
        )
        for name, step in steps:
            async with self._recorder.step(name) as log:
                await step(log)
        async with self._recorder.step("decide") as log:
            return await self._decide(log)

    @property
    def workspace(self) -> Workspace:
        """What the steps produced so far."""
        return self._work

    async def _load_data(self, parent: RegisteredModel, log: list[str]) -> None:
        spec = self._spec
        frame = await asyncio.to_thread(load_frame, spec.data)
        if spec.target not in frame.columns:
            raise InvalidArgument(f"training data has no target column {spec.target!r}")
        features = parent.signature.feature_names or tuple(
            c for c in frame.columns if c != spec.target
        )
        missing = sorted(set(features) - set(frame.columns))
        if missing:
            raise InvalidArgument(f"training data lacks the model's input columns {missing}")
        work = self._work
        work.frame, work.features = frame, tuple(features)
        work.classification = any(o.name == "probabilities" for o in parent.signature.outputs)
        work.dataset = DatasetRef(
            uri=await asyncio.to_thread(dataset_uri, spec.data),
            sha256=await asyncio.to_thread(content_hash, frame),
        )
        self._split()
        assert work.train_x is not None
        assert work.holdout_x is not None
        log.append(f"{len(frame)} rows, {len(features)} input columns from {spec.data}")
        log.append(f"sha256 {work.dataset.sha256}")
        log.append(f"train {len(work.train_x)} rows, holdout {len(work.holdout_x)} rows")

    def _split(self) -> None:
        from sklearn.model_selection import train_test_split

        work, holdout = self._work, self._spec.holdout
        assert work.frame is not None
        labels = work.frame[self._spec.target].to_numpy()
        stratify = labels if work.classification else None
        train_x, holdout_x, train_y, holdout_y = train_test_split(
            work.frame.loc[:, list(work.features)],
            labels,
            test_size=holdout.fraction,
            random_state=holdout.seed,
            stratify=stratify,
        )
        work.train_x, work.holdout_x = train_x, holdout_x
        work.train_y, work.holdout_y = np.asarray(train_y), np.asarray(holdout_y)

    async def _train(self, log: list[str]) -> None:
        work = self._work
        params = dict(self._spec.params)
        if self._spec.tune is not None:
            params |= await asyncio.to_thread(self._tune, log)
        work.estimator = await asyncio.to_thread(self._fit, params)
        work.hyperparameters = params
        work.mlflow_run_id = await asyncio.to_thread(self._log_training, params)
        log.append(f"trained {self._spec.trainer} with {params}")
        log.append(f"MLflow run {work.mlflow_run_id}")

    def _fit(self, params: dict[str, Any]) -> Any:
        work, trainer = self._work, self._spec.trainer
        if trainer in BUILT_IN_TRAINERS:
            from control_plane.tuning.estimators import build_estimator

            if not work.classification:
                raise InvalidArgument(f"built-in trainer {trainer!r} trains classifiers only")
            estimator = build_estimator(trainer, params, seed=self._spec.holdout.seed)
            return estimator.fit(work.train_x, work.train_y)
        return entry_point(trainer)(work.train_x, work.train_y, params)

    def _tune(self, log: list[str]) -> dict[str, Any]:
        from control_plane.tuning.estimators import HoldoutObjective
        from control_plane.tuning.tuner import HyperparameterTuner

        options, trainer = self._spec.tune, self._spec.trainer
        assert options is not None
        if trainer not in BUILT_IN_TRAINERS:
            raise InvalidArgument(f"tuning needs a built-in trainer {BUILT_IN_TRAINERS}")
        tuner = HyperparameterTuner(
            trainer,
            study_name=f"retraining-{self._run.model}-{self._run.id}",
            storage=self._services.settings.tuning.storage,
            seed=self._spec.holdout.seed,
            tracker=self._services.tracker,
            experiment=f"retraining-{self._run.model}",
        )
        try:
            tuner.create_study()
            objective = HoldoutObjective(
                trainer, self._work.train_x, self._work.train_y, seed=self._spec.holdout.seed
            )
            timeout = options.timeout_s or None
            done = tuner.optimize(objective, n_trials=options.trials, timeout=timeout)
            best = tuner.best_configuration()
        finally:
            tuner.close()
        log.append(f"tuned: {done.completed} trials completed, best log loss {best.value:.4f}")
        return dict(best.params)

    def _log_training(self, params: dict[str, Any]) -> str:
        scalars = {k: v for k, v in params.items() if isinstance(v, int | float | str | bool)}
        tags = {"modelyard.retraining_run": self._run.id, "modelyard.model": self._run.model}
        with self._services.tracker.start_run(
            f"retraining-{self._run.model}", run_name=f"retrain-{self._run.id[:8]}", tags=tags
        ) as run:
            run.log_params({"trainer": self._spec.trainer, **scalars})
            return run.run_id

    async def _convert(self, log: list[str]) -> None:
        from converters import convert

        work = self._work
        assert work.train_x is not None
        sample = work.train_x.head(CONVERSION_SAMPLE_ROWS)
        work.conversion = await asyncio.to_thread(convert, work.estimator, sample)
        fidelity = work.conversion.fidelity
        log.append(f"ONNX conversion passed its fidelity check on {len(sample)} rows")
        log.append(msgspec.json.encode(msgspec.to_builtins(fidelity)).decode()[:400])

    async def _evaluate(self, log: list[str]) -> None:
        work = self._work
        assert work.conversion is not None
        candidate = await asyncio.to_thread(self._score, work.conversion.onnx)
        production_model = await self._production()
        production: dict[str, float] = {}
        if production_model is not None:
            onnx_bytes = await self._services.registry.onnx(production_model)
            production = await asyncio.to_thread(self._score, onnx_bytes)
        assert work.holdout_x is not None
        work.comparison = Comparison(
            holdout_rows=len(work.holdout_x),
            candidate=candidate,
            production=production,
            production_version=None if production_model is None else production_model.version,
        )
        log.append(f"candidate {_fmt(candidate)}")
        if production_model is None:
            log.append("no Production version")
        else:
            log.append(f"Production v{production_model.version} {_fmt(production)}")
        tracker = self._services.tracker
        holdout = {f"holdout_{k}": v for k, v in candidate.items()}
        await asyncio.to_thread(tracker.log_metrics, work.mlflow_run_id, holdout)

    async def _production(self) -> RegisteredModel | None:
        try:
            return await self._services.registry.production(self._run.model)
        except NotFound:
            return None

    def _score(self, onnx_bytes: bytes) -> dict[str, float]:
        from control_plane.retraining.scoring import score_frame

        work = self._work
        assert work.holdout_x is not None
        assert work.holdout_y is not None
        outputs = score_frame(onnx_bytes, work.holdout_x)
        if work.classification:
            probabilities = outputs["probabilities"]
            if probabilities.shape[1] != 2:
                raise FailedPrecondition("retraining evaluates binary classifiers only")
            metrics = classification_metrics(work.holdout_y.astype(int), probabilities[:, 1])
        else:
            metrics = regression_metrics(work.holdout_y, outputs["prediction"].reshape(-1))
        return measured(metrics)

    async def _register(self, parent: RegisteredModel, log: list[str]) -> None:
        work = self._work
        assert work.conversion is not None
        assert work.comparison is not None
        assert work.dataset is not None
        lineage = ModelLineage(
            mlflow_run_id=work.mlflow_run_id,
            training_dataset=work.dataset,
            features=parent.lineage.features,
            parent_version=parent.version,
            code_version=f"retraining:{self._spec.trainer}",
            hyperparameters={
                k: v
                for k, v in (work.hyperparameters or {}).items()
                if isinstance(v, int | float | str | bool)
            },
        )
        card = self._card(parent)
        assert work.train_x is not None
        sample = work.train_x.head(REFERENCE_ROWS)
        work.candidate = await self._services.registry.register_conversion(
            self._run.model,
            work.conversion,
            card,
            lineage,
            self._principal,
            description=f"retraining run {self._run.id} ({self._run.trigger.trigger_type.value})",
            reference_sample={str(c): sample[c].tolist() for c in sample.columns},
        )
        log.append(f"registered version {work.candidate.version} (stage None, card draft)")

    def _card(self, parent: RegisteredModel) -> Any:
        work = self._work
        assert work.comparison is not None
        assert work.dataset is not None
        metrics = tuple(
            PerformanceMetric(type=name, value=value, slice="holdout")
            for name, value in sorted(work.comparison.candidate.items())
        )
        training = DatasetInfo(
            name=f"{self._run.model} retraining data",
            uri=work.dataset.uri,
            sha256=work.dataset.sha256,
            rows=None if work.train_x is None else len(work.train_x),
        )
        evaluation = DatasetInfo(
            name="holdout",
            uri=work.dataset.uri,
            sha256=work.dataset.sha256,
            description=f"{self._spec.holdout.fraction:.0%} held out, seed "
            f"{self._spec.holdout.seed}",
            rows=work.comparison.holdout_rows,
        )
        return msgspec.structs.replace(
            parent.card,
            metrics=metrics,
            training_data=training,
            evaluation_data=evaluation,
        )

    async def _decide(self, log: list[str]) -> tuple[bool, str]:
        work, spec = self._work, self._spec
        assert work.comparison is not None
        assert work.candidate is not None
        decision = decide(
            work.comparison.candidate,
            work.comparison.production or None,
            primary=spec.primary_metric,
            direction=spec.direction,
            min_improvement=spec.min_improvement,
            guardrails=spec.guardrails,
        )
        log.append(decision.reason)
        if decision.promote:
            await self._services.registry.stages.transition(
                self._run.model,
                work.candidate.version,
                ModelStage.STAGING,
                self._principal,
                f"retraining run {self._run.id}: {decision.reason}",
            )
            log.append(f"version {work.candidate.version} moved to Staging and published")
        else:
            log.append(f"version {work.candidate.version} stays unstaged; Production untouched")
        return decision.promote, decision.reason


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))
