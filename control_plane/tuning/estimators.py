"""Model families the tuner knows, and the default objective: validation log loss.

:func:`build_estimator` turns a sampled configuration into an unfitted scikit-learn style
classifier. :class:`HoldoutObjective` fits it on a training split and returns the log loss on
a validation split; LightGBM and XGBoost report the validation loss every
``report_every`` boosting rounds so the pruner can stop an unpromising trial early.
Estimators run single-threaded: parallelism comes from running trials side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optuna
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from control_plane.tuning.spaces import check_model

Reporter = Callable[[float, int], None]


def _lightgbm(params: dict[str, Any], seed: int, reporter: Reporter | None) -> Any:
    import lightgbm

    fixed = {"random_state": seed, "n_jobs": 1, "verbose": -1, "subsample_freq": 1}
    return lightgbm.LGBMClassifier(**(fixed | params))


def _xgboost(params: dict[str, Any], seed: int, reporter: Reporter | None) -> Any:
    import xgboost

    callbacks = [] if reporter is None else [_xgboost_callback(reporter)]
    fixed = {"random_state": seed, "n_jobs": 1, "tree_method": "hist", "verbosity": 0}
    return xgboost.XGBClassifier(**(fixed | params), callbacks=callbacks or None)


def _logistic_regression(params: dict[str, Any], seed: int, reporter: Reporter | None) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    # Unscaled features make lbfgs crawl and miss convergence; scaling is part of the model.
    classifier = LogisticRegression(**({"random_state": seed, "max_iter": 1000} | params))
    return Pipeline([("scale", StandardScaler()), ("classifier", classifier)])


_BUILDERS = {
    "logistic_regression": _logistic_regression,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
}


def build_estimator(
    model: str, params: Mapping[str, Any], *, seed: int = 0, reporter: Reporter | None = None
) -> Any:
    """An unfitted classifier of family ``model`` configured with ``params``.

    Args:
        model: ``logistic_regression``, ``lightgbm`` or ``xgboost``.
        params: hyperparameters (a sampled configuration).
        seed: random state of the estimator.
        reporter: called with (validation loss, boosting round) during XGBoost fitting.

    Raises:
        InvalidArgument: unknown model family.
    """
    return _BUILDERS[check_model(model)](dict(params), seed, reporter)


def _xgboost_callback(reporter: Reporter) -> Any:
    from xgboost.callback import TrainingCallback

    class _Report(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            for metrics in evals_log.values():
                for values in metrics.values():
                    reporter(float(values[-1]), epoch)
                    return False
            return False

    return _Report()


class HoldoutObjective:
    """Validation log loss of a model family on a fixed train/validation split (minimize).

    Args:
        model: the model family.
        features: the feature matrix.
        labels: the class labels.
        validation_fraction: share of rows held out (stratified split).
        seed: split and estimator seed.
        report_every: report the validation loss to the pruner every this many rounds.
    """

    direction = "minimize"

    def __init__(
        self,
        model: str,
        features: Any,
        labels: Any,
        *,
        validation_fraction: float = 0.25,
        seed: int = 0,
        report_every: int = 5,
    ) -> None:
        self.model = check_model(model)
        self.seed = seed
        self.report_every = report_every
        split = train_test_split(
            features, labels, test_size=validation_fraction, random_state=seed, stratify=labels
        )
        self.x_train, self.x_valid, self.y_train, self.y_valid = split
        self.labels = np.unique(labels)

    def __call__(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        """Fit on the training split; the validation log loss."""

        def report(value: float, step: int) -> None:
            if (step + 1) % self.report_every:
                return
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at round {step + 1}")

        estimator = build_estimator(self.model, params, seed=self.seed, reporter=report)
        fit_args: dict[str, Any] = {}
        if self.model == "lightgbm":
            fit_args = {
                "eval_X": self.x_valid,
                "eval_y": self.y_valid,
                "callbacks": [_lgbm(report)],
            }
        elif self.model == "xgboost":
            fit_args = {"eval_set": [(self.x_valid, self.y_valid)], "verbose": False}
        estimator.fit(self.x_train, self.y_train, **fit_args)
        probabilities = estimator.predict_proba(self.x_valid)
        return float(log_loss(self.y_valid, probabilities, labels=self.labels))


def _lgbm(reporter: Reporter) -> Callable[[Any], None]:
    def callback(env: Any) -> None:
        if env.evaluation_result_list:
            reporter(float(env.evaluation_result_list[0][2]), env.iteration)

    return callback
