"""The conversion pipeline: identify, plan inputs, convert, shape, measure, stamp.

``convert(model, sample)`` is the only entry point. Steps:

1. :func:`~converters.kinds.identify` finds the backend and the model's facts (an unsupported
   model is refused with the list of supported kinds);
2. :func:`~converters.inputs.plan_inputs` checks the sample's columns (kept as given);
3. the native model scores the sample as given and, rounded to FP32,
   :func:`~converters.precision.check_inputs` says whether FP32 inputs change its answers;
   :func:`~converters.precision.candidates` orders the precisions to try (``auto``: FP32
   when it changes nothing, else FP64);
4. per candidate, the backend converts; :func:`~converters.graph.apply_convention` renames
   the outputs; ``onnx.checker`` validates the graph; onnxruntime scores the sample fed as
   the server feeds it; :func:`~converters.fidelity.measure` compares with the native
   answers on the sample as given (the total) and on the values fed (the graph's share);
   the first candidate within tolerance wins;
5. :func:`~converters.fidelity.enforce` refuses a conversion outside the tolerances unless
   ``allow_mismatch`` is set (then the metadata records the override);
6. :func:`~converters.graph.stamp` writes the metadata and serializes deterministically.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import msgspec
import numpy as np
import onnx
import pandas as pd

from converters.fidelity import Scores, enforce, measure
from converters.graph import apply_convention, signature_of, stamp
from converters.inputs import MATRIX_INPUT, plan_inputs
from converters.kinds import CLASSIFICATION, ConversionFailed, identify
from converters.lightgbm_backend import LightGBMBackend
from converters.precision import PRECISIONS, candidates, check_inputs
from converters.report import ConversionResult, FidelityReport, Tolerances
from converters.sklearn_backend import SklearnBackend
from converters.xgboost_backend import XGBoostBackend
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from converters.inputs import InputPlan
    from converters.kinds import Backend, ModelFacts
    from converters.precision import InputCheck

FLOAT64_NOTE = (
    "float64 graph: FP64 inputs; float64 tree thresholds (LightGBM, HistGradientBoosting) or the "
    "input cast to FP32 where the native model casts it (XGBoost, RandomForest, "
    "GradientBoosting); transformers and linear steps in double; scores output as FP32"
)
METADATA_ROWS = 100
"""Disagreeing rows listed in the metadata copy of the fidelity report."""


def backends() -> tuple[Backend, ...]:
    """The supported frameworks, framework wrappers before plain scikit-learn."""
    return (LightGBMBackend(), XGBoostBackend(), SklearnBackend())


def convert(
    model: object,
    sample: pd.DataFrame | NDArray[np.generic],
    *,
    tolerances: Tolerances | None = None,
    allow_mismatch: bool = False,
    precision: str = "auto",
) -> ConversionResult:
    """Convert a fitted model to ONNX and prove it on a sample.

    Args:
        model: a fitted scikit-learn estimator or pipeline, LightGBM estimator or Booster,
            or XGBoost estimator.
        sample: rows the model accepts: a table with the model's columns, or a 2-D array in
            the model's column order. The native model scores it as given; the ONNX model
            as the server feeds it (FP32 or FP64 inputs).
        tolerances: the limits of the fidelity check (defaults: probabilities within 1e-5,
            every label equal, predictions within 1e-5 + 1e-5 * max |prediction|).
        allow_mismatch: accept a conversion outside the tolerances; the metadata then says
            ``modelyard.fidelity.override = true``.
        precision: ``auto`` (FP32 inputs when they change no native answer on the sample
            and every integer fits, else FP64), ``float32`` or ``float64``.

    Returns:
        The ONNX bytes, their signature, the fidelity report and the metadata written.

    Raises:
        UnsupportedModel: the model is not a supported kind (the message lists them).
        InvalidArgument: the sample does not fit the model (missing or extra columns named),
            the native model refuses it, or an unknown precision.
        ConversionFailed: the converter or onnxruntime failed on a model of a supported kind.
        FidelityError: the ONNX model is outside the tolerances and no override was given.
    """
    tolerances = tolerances or Tolerances()
    if precision not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {list(PRECISIONS)}, not {precision!r}")
    backend, facts = identify(model, backends())
    plan = plan_inputs(
        sample,
        expected=facts.feature_names,
        n_features=facts.n_features,
        per_column=facts.per_column,
        normalize=facts.normalize_name,
    )
    native = _native_scores(backend, model, facts, plan)
    check = None
    if plan.float_columns():
        check = check_inputs(
            plan,
            lambda p: _native_scores(backend, model, facts, p),
            native,
            tolerances,
            facts.task,
        )
    graph, plan, report = _best_graph(
        backend, model, facts, plan, native, tolerances, candidates(precision, check)
    )
    report = _with_precision_facts(report, facts, check)
    enforce(report, allow_mismatch=allow_mismatch)
    data, metadata = stamp(graph, _metadata(facts, plan, report))
    return ConversionResult(
        onnx=data,
        sha256=hashlib.sha256(data).hexdigest(),
        signature=signature_of(graph, plan.feature_names),
        fidelity=report,
        metadata=metadata,
    )


def _best_graph(
    backend: Backend,
    model: object,
    facts: ModelFacts,
    plan: InputPlan,
    native: Scores,
    tolerances: Tolerances,
    tries: list[tuple[str, str]],
) -> tuple[onnx.ModelProto, InputPlan, FidelityReport]:
    """Convert at each precision in turn; the first within tolerance (else the last built).

    Raises:
        ConversionFailed: no precision could be converted (the last failure).
    """
    best: tuple[onnx.ModelProto, InputPlan, FidelityReport] | None = None
    failures: list[str] = []
    for precision, reason in tries:
        typed = plan.with_precision(precision)
        try:
            graph = _onnx_graph(backend, model, facts, typed)
            report = _measure(backend, model, facts, typed, graph, native, tolerances)
        except ConversionFailed as exc:
            failures.append(f"{precision}: {exc}")
            if best is None and precision == tries[-1][0]:
                raise
            continue
        note = f"; {'; '.join(failures)}" if failures else ""
        report = msgspec.structs.replace(report, precision_reason=reason + note)
        if best is None or report.within_tolerance:
            best = (graph, typed, report)
        if report.within_tolerance:
            break
    assert best is not None  # the loop raises when nothing was built
    return best


def _measure(
    backend: Backend,
    model: object,
    facts: ModelFacts,
    plan: InputPlan,
    graph: onnx.ModelProto,
    native: Scores,
    tolerances: Tolerances,
) -> FidelityReport:
    """The total (native on the sample vs ONNX) and its input and graph shares."""
    fed = plan.as_fed()
    onnx_scores = _score(graph, fed, facts)
    native_fed = _native_scores(backend, model, facts, fed) if fed is not plan else native
    total = measure(facts.task, native, onnx_scores, tolerances)
    share_input = measure(facts.task, native, native_fed, tolerances)
    share_graph = measure(facts.task, native_fed, onnx_scores, tolerances)
    return msgspec.structs.replace(
        total,
        precision=plan.precision,
        input_max_abs_diff=share_input.max_abs_diff,
        input_label_changes=round((1 - (share_input.label_agreement or 1.0)) * total.rows),
        graph_max_abs_diff=share_graph.max_abs_diff,
    )


def _with_precision_facts(
    report: FidelityReport, facts: ModelFacts, check: InputCheck | None
) -> FidelityReport:
    notes = facts.notes if report.precision == "float32" else (FLOAT64_NOTE,)
    if not report.within_tolerance and report.precision_reason:
        notes = (*notes, f"precision: {report.precision_reason}")
    if check is None:
        return msgspec.structs.replace(report, notes=notes)
    return msgspec.structs.replace(
        report,
        notes=notes,
        precision_sensitive_features=check.sensitive,
        unrepresentable_features=check.unrepresentable,
    )


# The converters and onnxruntime signal a model they cannot handle with these (skl2onnx and
# onnxmltools raise RuntimeError/NotImplementedError/ValueError/TypeError/KeyError from deep
# inside; onnxruntime's Fail/InvalidGraph derive from RuntimeError).
_CONVERTER_ERRORS = (RuntimeError, ValueError, TypeError, KeyError, AttributeError, IndexError)


def _onnx_graph(
    backend: Backend, model: object, facts: ModelFacts, plan: InputPlan
) -> onnx.ModelProto:
    """Convert, apply the convention, check the graph.

    Raises:
        ConversionFailed: the converter or ``onnx.checker`` rejected the model.
    """
    try:
        graph = backend.to_onnx(model, facts, plan)
        apply_convention(graph, facts, plan.feature_names if plan.per_column else (MATRIX_INPUT,))
        onnx.checker.check_model(graph, full_check=True)
    except (*_CONVERTER_ERRORS, onnx.checker.ValidationError) as exc:
        raise ConversionFailed(facts, exc) from None
    return graph


def _native_scores(backend: Backend, model: object, facts: ModelFacts, plan: InputPlan) -> Scores:
    """Score the sample with the native model.

    Raises:
        InvalidArgument: the native model refuses the sample (e.g. NaN where it takes none).
    """
    try:
        return backend.predict(model, facts, plan)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgument(f"the native {facts.kind} cannot score the sample: {first}") from None


def _score(graph: onnx.ModelProto, plan: InputPlan, facts: ModelFacts) -> Scores:
    """Score the sample with onnxruntime, one thread (the figures depend on the sum order).

    Raises:
        ConversionFailed: onnxruntime cannot load or run the converted graph.
    """
    try:
        return _run_onnx(graph, plan, facts)
    except _CONVERTER_ERRORS as exc:
        raise ConversionFailed(facts, exc) from None


def _run_onnx(graph: onnx.ModelProto, plan: InputPlan, facts: ModelFacts) -> Scores:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    outputs = session.run(None, plan.onnx_feed())
    if facts.task == CLASSIFICATION:
        return Scores(labels=np.asarray(outputs[0]), values=np.asarray(outputs[1]))
    return Scores(labels=None, values=np.asarray(outputs[0]).reshape(-1))


def _metadata(facts: ModelFacts, plan: InputPlan, report: FidelityReport) -> dict[str, str]:
    listed = msgspec.structs.replace(
        report, disagreeing_rows=report.disagreeing_rows[:METADATA_ROWS]
    )
    sample_hash = hashlib.sha256(
        pd.util.hash_pandas_object(plan.frame, index=True).to_numpy().tobytes()
    ).hexdigest()
    metadata = {
        "modelyard.task": facts.task,
        "modelyard.feature_names": json.dumps(list(plan.feature_names)),
        "modelyard.feature_types": json.dumps(list(plan.feature_types)),
        "modelyard.input_layout": "per_column" if plan.per_column else "matrix",
        "modelyard.precision": plan.precision,
        "modelyard.source_framework": facts.framework,
        "modelyard.source_framework_version": facts.framework_version,
        "modelyard.source_kind": facts.kind,
        "modelyard.converter": facts.converter,
        "modelyard.fidelity": msgspec.json.encode(listed).decode(),
        "modelyard.fidelity.within_tolerance": str(report.within_tolerance).lower(),
        "modelyard.fidelity.override": str(not report.within_tolerance).lower(),
        "modelyard.sample_sha256": sample_hash,
    }
    if facts.task == CLASSIFICATION:
        metadata["modelyard.class_labels"] = json.dumps(list(facts.class_labels))
    return metadata
