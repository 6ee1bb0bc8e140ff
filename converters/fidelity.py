"""Fidelity: score the sample with the native and the ONNX model and compare.

:func:`measure` turns two :class:`Scores` into a :class:`~converters.report.FidelityReport`;
:func:`enforce` refuses a report outside its tolerances unless the caller overrides. The
comparison is element-wise on probabilities (classifiers) or predictions (regressors), plus
label agreement per row.

>>> import numpy as np
>>> native = Scores(labels=np.array([0, 1]), values=np.array([[0.9, 0.1], [0.2, 0.8]]))
>>> onnx = Scores(labels=np.array([0, 1]), values=np.array([[0.9, 0.1], [0.2, 0.8000001]]))
>>> report = measure("classification", native, onnx, Tolerances())
>>> report.within_tolerance, report.label_agreement, report.disagreeing_rows
(True, 1.0, ())
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from converters.report import FidelityReport, Tolerances
from modelyard.errors import FailedPrecondition

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAX_LISTED_ROWS = 1000


class FidelityError(FailedPrecondition):
    """The ONNX model disagrees with the native model beyond the configured tolerances.

    Attributes:
        report: the measured figures.
    """

    def __init__(self, report: FidelityReport) -> None:
        rows = ", ".join(str(i) for i in report.disagreeing_rows[:10])
        more = "..." if len(report.disagreeing_rows) > 10 else ""
        reason = f"; {'; '.join(report.notes)}" if report.notes else ""
        super().__init__(
            f"conversion refused: the ONNX model is outside the tolerances "
            f"({_tolerance_text(report)}): {report.summary()}"
            f" (rows {rows}{more}){reason}; pass allow_mismatch (--allow-mismatch) to override"
        )
        self.report = report


@dataclasses.dataclass(frozen=True)
class Scores:
    """What one model said about the sample.

    Attributes:
        labels: one label per row (classifiers) or ``None`` (regressors).
        values: probabilities ``[rows, classes]`` or predictions ``[rows]``.
    """

    labels: NDArray[np.generic] | None
    values: NDArray[np.floating]


def measure(task: str, native: Scores, onnx: Scores, tolerances: Tolerances) -> FidelityReport:
    """Compare the native and the ONNX scores of the same rows.

    A row whose labels differ only because the native model ties (its two largest
    probabilities within ``probability_atol``) is listed in ``tied_rows``, not counted
    against the tolerance: either label is the native model's answer.

    Args:
        task: ``classification`` or ``regression``.
        native: scores of the native model.
        onnx: scores of the ONNX model, same rows in the same order.
        tolerances: the limits the report is judged against.

    Returns:
        The report; ``within_tolerance`` says whether every figure is inside the limits.
    """
    ref = np.asarray(native.values, dtype=np.float64)
    got = np.asarray(onnx.values, dtype=np.float64).reshape(ref.shape)
    diff = np.abs(got - ref)
    rows = ref.shape[0]
    if task == "classification":
        bad_values = diff.reshape(rows, -1).max(axis=1, initial=0.0) > tolerances.probability_atol
        rel = 0.0
    else:
        bad_values, rel = _outside_prediction_tolerance(ref, diff, tolerances)
    differs = _labels_differ(native.labels, onnx.labels, rows)
    tied = differs & _ties(ref, tolerances)
    counted = differs & ~tied
    bad = np.flatnonzero(bad_values | counted)
    agreement = _share_equal(differs) if native.labels is not None else None
    within = not bad_values.any() and (
        agreement is None or _share_equal(counted) >= tolerances.min_label_agreement
    )
    return FidelityReport(
        task=task,
        rows=rows,
        compared="probabilities" if task == "classification" else "prediction",
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        max_rel_diff=rel,
        label_agreement=agreement,
        disagreeing_rows=tuple(int(i) for i in bad[:MAX_LISTED_ROWS]),
        tied_rows=tuple(int(i) for i in np.flatnonzero(tied)[:MAX_LISTED_ROWS]),
        within_tolerance=bool(within),
        tolerances=tolerances,
    )


def enforce(report: FidelityReport, *, allow_mismatch: bool) -> None:
    """Refuse a conversion outside its tolerances unless the caller overrides.

    Args:
        report: the measured fidelity.
        allow_mismatch: accept the conversion anyway (the metadata records it).

    Raises:
        FidelityError: the report is outside its tolerances and no override was given.
    """
    if not report.within_tolerance and not allow_mismatch:
        raise FidelityError(report)


def _outside_prediction_tolerance(
    ref: NDArray[np.float64], diff: NDArray[np.float64], tolerances: Tolerances
) -> tuple[NDArray[np.bool_], float]:
    """Rows outside ``atol + rtol * max|native|`` and the largest relative difference.

    FP32 rounding error grows with the magnitude of the intermediate sums, i.e. with the
    target's scale, not with each row's own value (which may be near zero).
    """
    rows = ref.shape[0]
    if not rows:
        return np.zeros(0, dtype=bool), 0.0
    scale = max(float(np.abs(ref).max()), 1e-12)
    allowed = tolerances.prediction_atol + tolerances.prediction_rtol * scale
    outside = np.asarray((diff > allowed).reshape(rows, -1).any(axis=1))
    return outside, float(diff.max()) / scale


def _labels_differ(
    native: NDArray[np.generic] | None, onnx: NDArray[np.generic] | None, rows: int
) -> NDArray[np.bool_]:
    if native is None or onnx is None:
        return np.zeros(rows, dtype=bool)
    left, right = np.asarray(native).ravel(), np.asarray(onnx).ravel()
    if left.dtype.kind in "biuf" and right.dtype.kind in "biuf":
        return np.asarray(left.astype(np.float64) != right.astype(np.float64))
    return np.asarray(left.astype(str) != right.astype(str))


def _share_equal(differs: NDArray[np.bool_]) -> float:
    return float(1.0 - differs.mean()) if differs.size else 1.0


def _ties(probabilities: NDArray[np.float64], tolerances: Tolerances) -> NDArray[np.bool_]:
    """Rows whose two largest native probabilities are within ``probability_atol``."""
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:  # regression: no ties
        return np.zeros(probabilities.shape[0], dtype=bool)
    top = np.sort(probabilities, axis=1)[:, -2:]
    return np.asarray((top[:, 1] - top[:, 0]) <= tolerances.probability_atol)


def _tolerance_text(report: FidelityReport) -> str:
    tol = report.tolerances
    if report.task == "classification":
        return (
            f"probabilities within {tol.probability_atol:g}, "
            f"label agreement >= {tol.min_label_agreement:.3%}"
        )
    return f"|Δ| <= {tol.prediction_atol:g} + {tol.prediction_rtol:g} * max |prediction|"
