"""The shapes a conversion returns: tolerances, the fidelity report and the result.

All are frozen ``msgspec.Struct(kw_only=True)`` values so the CLI, the control plane and the
tests can encode them to JSON unchanged. :class:`Tolerances` is also decoded from outside
input (a CLI option or an API body), so it forbids unknown fields.
"""

from __future__ import annotations

import msgspec

from modelyard.models import InputValue, ModelSignature


class Tolerances(InputValue, kw_only=True, frozen=True):
    """The largest differences between the native and the ONNX model a conversion accepts.

    Attributes:
        probability_atol: max |Δ| of any class probability (classifiers).
        prediction_atol: absolute part of the regression tolerance.
        prediction_rtol: relative part: a prediction passes when
            ``|Δ| <= prediction_atol + prediction_rtol * max|native|`` over the sample
            (regressors compute and output FP32, whose rounding error grows with the scale
            of the target, not with each row's own value).
        min_label_agreement: the share of rows whose labels must agree (classifiers).
    """

    probability_atol: float = 1e-5
    prediction_atol: float = 1e-5
    prediction_rtol: float = 1e-5
    min_label_agreement: float = 1.0


class FidelityReport(msgspec.Struct, kw_only=True, frozen=True):
    """How closely the ONNX model reproduces the native model on the sample.

    The totals compare the native model on the sample *as given* (float64 columns) with the
    ONNX model fed the way the server is fed (FP32 or FP64 inputs): what the user gets. The
    total splits into the input's share (native on the sample vs native on the values the
    graph receives) and the graph's share (native vs ONNX on those same values).

    Attributes:
        task: ``classification`` or ``regression``.
        rows: rows scored.
        compared: what ``max_abs_diff`` measures: ``probabilities`` or ``prediction``.
        max_abs_diff: max |Δ| over every probability (or prediction).
        mean_abs_diff: mean |Δ| over every probability (or prediction).
        max_rel_diff: max |Δ| / max |native| over the sample (regression; 0.0 for classifiers).
        label_agreement: share of rows with the same label, ties included (``None`` for
            regressors).
        disagreeing_rows: sample row indices whose label differs or whose values fall outside
            the tolerances (at most 1000 listed); ties excepted.
        tied_rows: rows whose labels differ only because the native model ties: its two
            largest probabilities are within ``probability_atol``, so either label is its
            answer. Listed, not counted against ``min_label_agreement``.
        within_tolerance: every figure is inside the tolerances.
        tolerances: the tolerances applied.
        notes: known precision limits of this kind, and why a figure misses its tolerance.
        precision: the graph's float inputs: ``float32`` (FP32) or ``float64`` (FP64).
        precision_reason: why that precision was chosen (``--precision``).
        input_max_abs_diff: max |Δ| between the native model on the sample and on the values
            the graph receives (0 for FP64 inputs).
        input_label_changes: rows whose native label those rounded values change.
        graph_max_abs_diff: max |Δ| between the native and the ONNX model on the values the
            graph receives.
        precision_sensitive_features: features whose FP32 rounding alone moves the native
            answers outside the tolerances.
        unrepresentable_features: features holding integers beyond 2^24 that FP32 cannot
            represent.
    """

    task: str
    rows: int
    compared: str
    max_abs_diff: float
    mean_abs_diff: float
    max_rel_diff: float = 0.0
    label_agreement: float | None = None
    disagreeing_rows: tuple[int, ...] = ()
    tied_rows: tuple[int, ...] = ()
    within_tolerance: bool
    tolerances: Tolerances
    notes: tuple[str, ...] = ()
    precision: str = "float32"
    precision_reason: str = ""
    input_max_abs_diff: float = 0.0
    input_label_changes: int = 0
    graph_max_abs_diff: float = 0.0
    precision_sensitive_features: tuple[str, ...] = ()
    unrepresentable_features: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line naming the figures, for errors and logs.

        Returns:
            e.g. ``max |Δ probabilities| 4.5e-07, mean 1.2e-08, label agreement 100.000%``.
        """
        parts = [
            f"max |Δ {self.compared}| {self.max_abs_diff:.3g}",
            f"mean {self.mean_abs_diff:.3g}",
        ]
        if self.task == "regression":
            parts.append(f"max relative {self.max_rel_diff:.3g}")
        if self.label_agreement is not None:
            parts.append(f"label agreement {self.label_agreement:.3%}")
        parts.append(f"{len(self.disagreeing_rows)} disagreeing rows of {self.rows}")
        if self.tied_rows:
            parts.append(f"{len(self.tied_rows)} rows differing only at a native tie")
        parts.append(
            f"{self.precision} inputs (input share {self.input_max_abs_diff:.3g}, "
            f"graph share {self.graph_max_abs_diff:.3g})"
        )
        return ", ".join(parts)


class ConversionResult(msgspec.Struct, kw_only=True, frozen=True):
    """A converted model and everything known about it.

    Attributes:
        onnx: the serialized ONNX model (byte-identical for the same model and sample).
        sha256: hex SHA-256 of ``onnx`` (the artifact's address in the store).
        signature: inputs and outputs of the ONNX graph, with the feature names.
        fidelity: native vs ONNX on the sample.
        metadata: the ``metadata_props`` written into the model (``modelyard.*`` keys).
    """

    onnx: bytes
    sha256: str
    signature: ModelSignature
    fidelity: FidelityReport
    metadata: dict[str, str]
