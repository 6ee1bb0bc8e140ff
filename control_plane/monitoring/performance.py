"""Performance metrics of a window of labelled predictions, and the degradation rule.

Classification: accuracy, ROC AUC, F1 (positive class 1) and log loss from the positive-class
score; regression: RMSE and MAE. The *baseline* is the version's registration-time metric
(the model card's overall ``metrics``). A metric is *degraded* when it is worse than the
baseline by more than ``threshold`` x |baseline| -- lower for accuracy/AUC/F1, higher for log
loss/RMSE/MAE.

>>> m = classification_metrics([0, 1, 1, 0, 1], [0.2, 0.9, 0.6, 0.4, 0.3])
>>> {k: round(v, 3) for k, v in m.items()}
{'accuracy': 0.8, 'auc': 0.833, 'f1': 0.8, 'log_loss': 0.511}
>>> degradation("accuracy", 0.80, baseline=0.90, threshold=0.05).flagged
True
>>> degradation("rmse", 1.02, baseline=1.0, threshold=0.05).flagged
False
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

from sklearn import metrics as skm

from control_plane.monitoring.models import FeatureDetail

HIGHER_IS_BETTER = {
    "accuracy": True,
    "auc": True,
    "f1": True,
    "log_loss": False,
    "rmse": False,
    "mae": False,
}
CLASSIFICATION = ("accuracy", "auc", "f1", "log_loss")
REGRESSION = ("rmse", "mae")
_EPS = 1e-15


def classification_metrics(
    labels: Sequence[int], scores: Sequence[float], cutoff: float = 0.5
) -> dict[str, float]:
    """Accuracy, AUC, F1 and log loss of positive-class ``scores`` against 0/1 ``labels``.

    AUC is left out when the window holds one class only (it is undefined then).
    """
    predicted = [int(s >= cutoff) for s in scores]
    clipped = [min(1 - _EPS, max(_EPS, s)) for s in scores]
    result = {
        "accuracy": float(skm.accuracy_score(labels, predicted)),
        "f1": float(skm.f1_score(labels, predicted, zero_division=0.0)),
        "log_loss": float(skm.log_loss(labels, clipped, labels=[0, 1])),
    }
    if len(set(labels)) == 2:
        result["auc"] = float(skm.roc_auc_score(labels, scores))
    return dict(sorted(result.items()))


def regression_metrics(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """RMSE and MAE.

    >>> regression_metrics([1.0, 2.0, 3.0], [1.5, 2.0, 2.0])
    {'mae': 0.5, 'rmse': 0.6454972243679028}
    """
    return {
        "mae": float(skm.mean_absolute_error(targets, predictions)),
        "rmse": math.sqrt(float(skm.mean_squared_error(targets, predictions))),
    }


def degradation(metric: str, value: float, *, baseline: float, threshold: float) -> FeatureDetail:
    """Compare ``value`` with ``baseline``: flagged when worse by more than the allowed margin.

    ``score`` is the relative drop (positive = worse), ``threshold`` the allowed one.
    """
    worse = baseline - value if HIGHER_IS_BETTER[metric] else value - baseline
    relative = worse / abs(baseline) if baseline else worse
    # NOTE: a baseline near 0 (a card's rmse of 5e-324) made the drop infinite, which JSON
    # cannot carry: the alert could not be stored. The largest float flags it all the same.
    relative = max(-sys.float_info.max, min(sys.float_info.max, relative))
    return FeatureDetail(
        feature=metric,
        method="relative_drop",
        score=relative,
        threshold=threshold,
        flagged=relative > threshold,
        baseline=baseline,
    )


__all__ = [
    "CLASSIFICATION",
    "HIGHER_IS_BETTER",
    "REGRESSION",
    "classification_metrics",
    "degradation",
    "regression_metrics",
]
