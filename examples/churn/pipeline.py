"""The churn training pipeline: data -> features -> baselines -> tuning -> convert -> register.

Runnable on its own (``python -m examples.churn``) against the local store named by the
settings, the way MLflow's local mode works: it opens the control plane's services in-process
(the same database and MLflow store a running control plane uses).

Steps, each reported through ``report``:
1. generate the seeded churn sample and split it (75/25, stratified);
2. register every engineered feature in the feature store (a changed definition becomes a new
   version; an unchanged one is reused), so lineage can name (feature, version) pairs;
3. train the three baselines, each an MLflow child run of the pipeline run, scored by
   validation ROC AUC;
4. a short Optuna (TPE) search over LightGBM, every trial an MLflow run;
5. pick the best model by validation AUC, log the native model to MLflow, convert it to ONNX
   (the fidelity check refuses a conversion that disagrees with the native model);
6. register it with a generated model card and its lineage, and submit the card for review.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from control_plane.app import ControlPlaneServices
from control_plane.features.models import FeatureDefinition, FeatureUpdate
from control_plane.features.service import FeatureService
from control_plane.registry.service import fidelity_figures
from control_plane.security.models import Principal
from control_plane.tracking.active_run import ActiveRun
from control_plane.tuning.estimators import build_estimator
from control_plane.tuning.tuner import HyperparameterTuner
from converters import ConversionResult, convert
from examples.churn.card import churn_model_card
from examples.churn.features import ENTITY, FEATURES, OWNER, SOURCE, FeatureSpec
from examples.churn.train import BASELINE_PARAMS, CANDIDATES, Splits, fit_and_score, split
from modelyard.datasets import ChurnDataset, generate_churn
from modelyard.errors import NotFound
from modelyard.models import DatasetRef, FeatureRef, ModelLineage, RegisteredModel

Report = Callable[[str], None]
REFERENCE_ROWS = 5000
"""Training rows each version's drift reference profile is built from."""


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """What the pipeline trains on and how hard it searches."""

    rows: int = 20_000
    seed: int = 0
    trials: int = 8
    model_name: str = "churn"
    experiment: str = "churn"
    challenger: bool = False
    """Also register the runner-up (an A/B test candidate)."""


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """What the pipeline produced."""

    model: RegisteredModel
    challenger: RegisteredModel | None
    """The runner-up, registered too (version n+1) when ``PipelineOptions.challenger``."""
    winner: str
    auc: dict[str, float]
    run_id: str
    features: tuple[FeatureRef, ...]
    conversion: ConversionResult
    native_model_path: Path
    validation_features: pd.DataFrame


def _definition_fields(spec: FeatureSpec) -> dict[str, Any]:
    return {
        "description": spec.description,
        "dtype": spec.dtype,
        "entity": ENTITY,
        "owner": OWNER,
        "transformation": spec.transformation,
        "source": SOURCE,
        "tags": spec.tags,
    }


async def ensure_features(service: FeatureService, actor: str) -> tuple[FeatureRef, ...]:
    """Register every churn feature; return the (name, version) each definition has now."""
    refs = []
    for spec in FEATURES:
        fields = _definition_fields(spec)
        try:
            current = await service.get_feature(spec.name)
        except NotFound:
            created = await service.create_feature(
                FeatureDefinition(name=spec.name, **fields), actor=actor
            )
            refs.append(FeatureRef(name=created.name, version=created.version))
            continue
        stored = {key: getattr(current, key) for key in fields}
        if stored != fields:
            current = await service.update_feature(spec.name, FeatureUpdate(**fields), actor=actor)
        refs.append(FeatureRef(name=current.name, version=current.version))
    return tuple(refs)


def _train_baselines(run: ActiveRun, splits: Splits) -> dict[str, tuple[Any, float]]:
    results = {}
    for name in CANDIDATES:
        with run.start_child(run_name=f"baseline-{name}") as child:
            params = BASELINE_PARAMS[name]
            model, auc = fit_and_score(name, params, splits)
            child.log_params({"family": name, **params})
            child.log_metrics({"val_roc_auc": auc})
        results[name] = (model, auc)
    return results


def _tune_lightgbm(
    services: ControlPlaneServices, options: PipelineOptions, splits: Splits
) -> tuple[Any, float, dict[str, Any]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the report shows the outcome
    tuner = HyperparameterTuner(
        "lightgbm",
        tracker=services.tracker,
        experiment=options.experiment,
        direction="maximize",
        seed=options.seed,
    )

    def objective(trial: optuna.Trial, params: dict[str, Any]) -> float:
        del trial
        return fit_and_score("lightgbm", params, splits)[1]

    try:
        tuner.optimize(objective, n_trials=options.trials)
        best = tuner.best_configuration()
    finally:
        tuner.close()
    model = build_estimator("lightgbm", best.params, seed=options.seed)
    model.fit(splits.x_train, splits.y_train)
    return model, best.value, dict(best.params)


def _slice_auc(model: Any, data: ChurnDataset, splits: Splits) -> dict[str, float]:
    contracts = data.frame.loc[splits.x_valid.index, "contract"].to_numpy()
    scores = model.predict_proba(splits.x_valid)[:, 1]
    return {
        contract: float(roc_auc_score(splits.y_valid[mask], scores[mask]))
        for contract in sorted(set(contracts))
        if len(set(splits.y_valid[mask := contracts == contract])) == 2
    }


async def _register(
    services: ControlPlaneServices,
    principal: Principal,
    options: PipelineOptions,
    run: ActiveRun,
    data: ChurnDataset,
    splits: Splits,
    refs: tuple[FeatureRef, ...],
    family: str,
    candidates: dict[str, tuple[Any, float]],
    tuned_params: dict[str, Any],
    report: Report,
) -> tuple[RegisteredModel, ConversionResult, Path]:
    """Convert ``family``'s model, register it with card and lineage, submit the card."""
    model = candidates[family][0]
    params = tuned_params if family == "lightgbm_tuned" else BASELINE_PARAMS[family]
    scores = model.predict_proba(splits.x_valid)[:, 1]
    metrics = {
        "roc_auc": float(roc_auc_score(splits.y_valid, scores)),
        "average_precision": float(average_precision_score(splits.y_valid, scores)),
        "accuracy": float(np.mean((scores >= 0.5) == splits.y_valid)),
    }
    with run.start_child(run_name=f"registered-{family}") as child:
        child.log_params({"family": family, **params})
        child.log_metrics(metrics)
        native_path = _log_native_model(child, model)
        report(f"{family} (ROC AUC {metrics['roc_auc']:.4f}): converting to ONNX")
        conversion = convert(model, splits.x_valid, precision="auto")
        report("fidelity: " + conversion.fidelity.summary())
        report(f"precision {conversion.fidelity.precision}: {conversion.fidelity.precision_reason}")
        child.log_metrics(
            {f"fidelity_{k}": v for k, v in fidelity_figures(conversion.fidelity).items()}
        )
    card = churn_model_card(
        family=family,
        version_label=run.run_id,
        training=data,
        validation_rows=len(splits.x_valid),
        metrics=metrics,
        slice_auc=_slice_auc(model, data, splits),
    )
    lineage = ModelLineage(
        mlflow_run_id=run.run_id,
        training_dataset=DatasetRef(uri=data.uri, sha256=data.content_hash()),
        features=refs,
        code_version=code_version(),
        hyperparameters={
            k: v for k, v in params.items() if isinstance(v, str | int | float | bool)
        },
    )
    reference = splits.x_train.head(REFERENCE_ROWS)
    registered = await services.registry.register_conversion(
        options.model_name,
        conversion,
        card,
        lineage,
        principal,
        description=f"churn classifier ({family})",
        reference_sample={str(c): reference[c].tolist() for c in reference.columns},
    )
    await services.registry.cards.submit(
        registered.name, registered.version, principal, "generated by the churn pipeline"
    )
    report(f"registered {registered.name} version {registered.version}; card submitted for review")
    return registered, conversion, native_path


def code_version() -> str:
    """The git commit of the working tree, or ``unknown`` outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def _log_native_model(run: ActiveRun, model: Any) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="churn-model-"))
    path = folder / "model.joblib"
    joblib.dump(model, path)
    run.log_artifact(path, artifact_path="native-model")
    return path


async def run_pipeline(
    services: ControlPlaneServices,
    principal: Principal,
    options: PipelineOptions = PipelineOptions(),
    report: Report = print,
) -> PipelineResult:
    """Run every step and register the winning model (its card submitted for review)."""
    report(f"generating {options.rows:,} customers (seed {options.seed})")
    data = generate_churn(options.rows, seed=options.seed)
    splits = split(data, seed=options.seed)
    refs = await ensure_features(services.feature_service, principal.name)
    report(f"feature store: {len(refs)} features, versions {sorted({r.version for r in refs})}")
    with services.tracker.start_run(options.experiment, run_name="churn-pipeline") as run:
        candidates = _train_baselines(run, splits)
        report(
            "baselines (validation ROC AUC): "
            + ", ".join(f"{k} {v[1]:.4f}" for k, v in candidates.items())
        )
        report(f"tuning LightGBM with Optuna: {options.trials} trials")
        tuned, tuned_auc, tuned_params = _tune_lightgbm(services, options, splits)
        candidates["lightgbm_tuned"] = (tuned, tuned_auc)
        report(f"tuned LightGBM: validation ROC AUC {tuned_auc:.4f}")
        ranked = sorted(candidates, key=lambda name: candidates[name][1], reverse=True)
        winner = ranked[0]
        registered, conversion, native_path = await _register(
            services,
            principal,
            options,
            run,
            data,
            splits,
            refs,
            winner,
            candidates,
            tuned_params,
            report,
        )
        challenger = None
        if options.challenger and len(ranked) > 1:
            challenger, _, _ = await _register(
                services,
                principal,
                options,
                run,
                data,
                splits,
                refs,
                ranked[1],
                candidates,
                tuned_params,
                report,
            )
    return PipelineResult(
        model=registered,
        challenger=challenger,
        winner=winner,
        auc={k: v[1] for k, v in candidates.items()},
        run_id=run.run_id,
        features=refs,
        conversion=conversion,
        native_model_path=native_path,
        validation_features=splits.x_valid,
    )
