"""Evaluation on the holdout and the promotion decision (pure functions, no I/O).

The candidate and the current Production version are scored on the *same* holdout rows, both
as the ONNX graphs the servers run. :func:`decide` is the whole promotion rule:

* no Production version: the candidate goes to Staging (there is nothing to beat);
* otherwise it must beat Production on the primary metric by at least ``min_improvement``
  (in the metric's direction), and no guardrail metric may get worse by more than its
  allowance; anything else rejects it and leaves Production untouched.

>>> better = decide({"auc": 0.91, "log_loss": 0.30}, {"auc": 0.88, "log_loss": 0.31},
...                 primary="auc", direction="maximize", min_improvement=0.01,
...                 guardrails={"log_loss": 0.0})
>>> better.promote, better.reason
(True, 'auc 0.9100 vs 0.8800 (+0.0300, needed +0.0100); guardrails held')
>>> worse = decide({"auc": 0.87}, {"auc": 0.88}, primary="auc", direction="maximize",
...                min_improvement=0.0, guardrails={})
>>> worse.promote, worse.reason
(False, 'auc 0.8700 vs 0.8800 (-0.0100, needed +0.0000): not better by the margin')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Mapping

CLASSIFICATION_METRICS = ("auc", "accuracy", "f1", "log_loss")
REGRESSION_METRICS = ("rmse", "mae")
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


@dataclass(frozen=True)
class Decision:
    """Whether to promote the candidate, and why (the numbers included)."""

    promote: bool
    reason: str


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """AUC, accuracy, F1 and log loss of positive-class probabilities against 0/1 labels.

    >>> m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.6, 0.4]))
    >>> {k: round(v, 4) for k, v in m.items()}
    {'auc': 1.0, 'accuracy': 1.0, 'f1': 1.0, 'log_loss': 0.3375}
    """
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    predicted = (probabilities >= 0.5).astype(int)
    clipped = np.clip(probabilities, 1e-15, 1 - 1e-15)
    return {
        "auc": float(roc_auc_score(labels, probabilities)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "log_loss": float(log_loss(labels, clipped, labels=[0, 1])),
    }


def regression_metrics(values: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """RMSE and MAE.

    >>> regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    {'rmse': 1.4142135623730951, 'mae': 1.0}
    """
    with np.errstate(over="ignore"):  # overflows are infinite metrics, which callers refuse
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(values, dtype=np.float64)
        return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}


def measured(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics``, once every value is finite.

    A holdout target of 1e200 made the RMSE infinite: stored in the run's comparison, it was a
    ``null`` where a float belongs, and every later read of the runs failed.

    Raises:
        InvalidArgument: naming the metrics that are not finite.

    >>> measured({"rmse": 1.5, "mae": 1.0})
    {'rmse': 1.5, 'mae': 1.0}
    >>> measured({"rmse": float("inf"), "mae": 2e199})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    modelyard.errors.InvalidArgument: the holdout metrics ['rmse'] are not finite: ...
    """
    unmeasured = sorted(name for name, value in metrics.items() if not math.isfinite(value))
    if unmeasured:
        raise InvalidArgument(
            f"the holdout metrics {unmeasured} are not finite: targets or predictions too "
            "large to measure (or not numbers)"
        )
    return metrics


def check_metric(metric: str, direction: Literal["maximize", "minimize"]) -> None:
    """Refuse an unknown metric, or a direction that contradicts it.

    Raises:
        InvalidArgument: unknown metric, or e.g. maximizing a log loss.
    """
    known = CLASSIFICATION_METRICS + REGRESSION_METRICS
    if metric not in known:
        raise InvalidArgument(f"unknown metric {metric!r}: expected one of {known}")
    expected = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    if direction != expected:
        raise InvalidArgument(f"metric {metric!r} must be {expected}d, not {direction}d")


def _gain(metric: str, candidate: float, production: float) -> float:
    """How much better the candidate is (positive = better), whatever the direction."""
    return production - candidate if metric in LOWER_IS_BETTER else candidate - production


def decide(
    candidate: Mapping[str, float],
    production: Mapping[str, float] | None,
    *,
    primary: str,
    direction: Literal["maximize", "minimize"],
    min_improvement: float,
    guardrails: Mapping[str, float],
) -> Decision:
    """The promotion rule (see the module docstring).

    Raises:
        InvalidArgument: the primary or a guardrail metric was not measured.
    """
    check_metric(primary, direction)
    for metric in (primary, *guardrails):
        if metric not in candidate:
            raise InvalidArgument(f"metric {metric!r} was not measured on the holdout")
    if not production:
        return Decision(True, f"no Production version to beat; {primary} {candidate[primary]:.4f}")
    gain = _gain(primary, candidate[primary], production[primary])
    head = (
        f"{primary} {candidate[primary]:.4f} vs {production[primary]:.4f} "
        f"({gain:+.4f}, needed +{min_improvement:.4f})"
    )
    if gain < min_improvement:
        return Decision(False, f"{head}: not better by the margin")
    breached = [
        f"{metric} {candidate[metric]:.4f} vs {production[metric]:.4f} (allowed -{allowed:.4f})"
        for metric, allowed in sorted(guardrails.items())
        if _gain(metric, candidate[metric], production[metric]) < -allowed
    ]
    if breached:
        return Decision(False, f"{head}; guardrail breached: {'; '.join(breached)}")
    return Decision(True, f"{head}; guardrails held")
