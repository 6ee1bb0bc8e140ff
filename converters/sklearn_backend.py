"""scikit-learn models through skl2onnx.

Supported: the estimators in :data:`ESTIMATORS`, alone or as the last step of a ``Pipeline``
whose other steps are the transformers in :data:`TRANSFORMERS`. A pipeline that starts with a
``ColumnTransformer`` takes one input per raw column (mixed numeric and string columns);
everything else takes one FP32 matrix.

Precision: skl2onnx rounds RandomForest/GradientBoosting thresholds *down* to FP32
(``x <= t`` and ``x <= float32_down(t)`` agree for every FP32 ``x``), so tree decisions on FP32
inputs are exact; for HistGradientBoosting (nearest rounding in skl2onnx) the thresholds are
rewritten the same way (:mod:`converters.thresholds`). Leaf values are summed in FP32.
Transformers (scaling, imputation) compute in FP32 in onnxruntime and in float64 natively.

A float64 plan converts with DOUBLE initial types: transformers and linear models compute in
double; HistGradientBoosting trees get the native float64 thresholds; RandomForest and
GradientBoosting trees take their input cast to FP32, as scikit-learn's own trees do
(:mod:`converters.skl2onnx_compat`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from converters.fidelity import Scores
from converters.inputs import MATRIX_INPUT
from converters.kinds import (
    CLASSIFICATION,
    ML_OPSET,
    REGRESSION,
    TARGET_OPSET,
    ModelFacts,
    UnsupportedModel,
)
from converters.skl2onnx_compat import conversion_overrides
from converters.sklearn_trees import fitted_trees, hgb_splits, hgb_trees, set_missing_directions
from converters.thresholds import round_thresholds_down
from converters.widen import float_trees_in_double_graph, set_double_thresholds
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    import onnx

    from converters.inputs import InputPlan

ESTIMATORS = {
    "LogisticRegression": CLASSIFICATION,
    "RandomForestClassifier": CLASSIFICATION,
    "GradientBoostingClassifier": CLASSIFICATION,
    "HistGradientBoostingClassifier": CLASSIFICATION,
    "LinearRegression": REGRESSION,
    "Ridge": REGRESSION,
    "RandomForestRegressor": REGRESSION,
    "GradientBoostingRegressor": REGRESSION,
    "HistGradientBoostingRegressor": REGRESSION,
}
TRANSFORMERS = frozenset(
    {"StandardScaler", "SimpleImputer", "OneHotEncoder", "ColumnTransformer", "Pipeline"}
)
_TREE_NOTE = (
    "tree thresholds rounded down to FP32 (decisions on FP32 inputs are exact); "
    "leaf values summed in FP32"
)
_PIPELINE_NOTE = (
    "transformers compute in FP32 in onnxruntime and float64 natively: a tree after a scaler "
    "may flip a row lying within one FP32 step of a split"
)


class SklearnBackend:
    """scikit-learn estimators and pipelines (see the module docstring)."""

    framework: str = "scikit-learn"
    supported_kinds: tuple[str, ...] = (
        *ESTIMATORS,
        "Pipeline of StandardScaler/SimpleImputer/OneHotEncoder/ColumnTransformer "
        "ending in one of these",
    )

    def accepts(self, model: object) -> bool:
        """Whether the model is a scikit-learn estimator."""
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def describe(self, model: object) -> ModelFacts:
        """The facts of an estimator or pipeline.

        Raises:
            UnsupportedModel: an estimator or step outside the supported kinds.
            InvalidArgument: the model is not fitted.
        """
        import skl2onnx
        import sklearn
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        final, steps = _split_pipeline(model)
        task = ESTIMATORS[type(final).__name__]
        try:
            check_is_fitted(model)
        except NotFittedError:
            raise InvalidArgument(f"the {type(model).__name__} is not fitted") from None
        if _multi_output(final, task):
            raise UnsupportedModel(f"a multi-output {type(final).__name__}")
        per_column = bool(steps) and steps[0] == "ColumnTransformer"
        names = getattr(model, "feature_names_in_", None)
        if per_column and names is None:
            raise InvalidArgument("a ColumnTransformer pipeline must be fitted on a DataFrame")
        kind = (
            f"Pipeline({', '.join([*steps, type(final).__name__])})"
            if steps
            else (type(final).__name__)
        )
        notes = [_TREE_NOTE] if "Forest" in kind or "Boosting" in kind else []
        notes += [_PIPELINE_NOTE] if steps else []
        return ModelFacts(
            kind=kind,
            framework=self.framework,
            framework_version=sklearn.__version__,
            converter=f"skl2onnx {skl2onnx.__version__}",
            task=task,
            class_labels=_labels(final) if task == CLASSIFICATION else (),
            feature_names=None if names is None else tuple(str(n) for n in names),
            n_features=int(model.n_features_in_),  # type: ignore[attr-defined]
            per_column=per_column,
            notes=tuple(notes),
        )

    def to_onnx(self, model: object, facts: ModelFacts, plan: InputPlan) -> onnx.ModelProto:
        """Convert with skl2onnx, ZipMap disabled."""
        from skl2onnx import convert_sklearn

        final, _ = _split_pipeline(model)
        options = {id(final): {"zipmap": False}} if facts.task == CLASSIFICATION else None
        if plan.precision == "float64":
            return _double_graph(model, final, plan, options)
        converted: onnx.ModelProto = convert_sklearn(
            model,
            name="modelyard",
            initial_types=_initial_types(plan),
            target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
            options=options,
            custom_conversion_functions=conversion_overrides(),
        )
        name = type(final).__name__
        if name.startswith("HistGradientBoosting"):
            round_thresholds_down(converted, hgb_splits(final))
        elif name.startswith(("RandomForest", "GradientBoosting")):
            set_missing_directions(converted, fitted_trees(final))
        return converted

    def predict(self, model: object, facts: ModelFacts, plan: InputPlan) -> Scores:
        """Score ``plan.frame`` with ``predict``/``predict_proba``."""
        features: Any = plan.frame if facts.feature_names is not None else plan.frame.to_numpy()
        estimator: Any = model
        if facts.task == CLASSIFICATION:
            return Scores(
                labels=np.asarray(estimator.predict(features)),
                values=np.asarray(estimator.predict_proba(features), dtype=np.float64),
            )
        predictions = np.asarray(estimator.predict(features), dtype=np.float64)
        return Scores(labels=None, values=predictions.reshape(len(plan.frame)))


def _double_graph(
    model: object, final: Any, plan: InputPlan, options: dict[int, Any] | None
) -> onnx.ModelProto:
    """Convert with DOUBLE float inputs and make the trees run as the native ones."""
    from skl2onnx import convert_sklearn

    converted: onnx.ModelProto = convert_sklearn(
        model,
        name="modelyard",
        initial_types=_initial_types(plan),
        target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET},
        options=options,
        custom_conversion_functions=conversion_overrides(),
    )
    name = type(final).__name__
    if name.startswith("HistGradientBoosting"):
        set_double_thresholds(converted, list(hgb_trees(final)))
        float_trees_in_double_graph(converted)
    elif name.startswith(("RandomForest", "GradientBoosting")):
        # conversion_overrides() ran the FP32 converter on a Cast input: thresholds are
        # rounded down already; NaN directions still need copying.
        set_missing_directions(converted, fitted_trees(final))
    return converted


def _split_pipeline(model: object) -> tuple[object, list[str]]:
    """The final estimator and the names of the steps before it, checked."""
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline):
        if type(model).__name__ not in ESTIMATORS:
            raise UnsupportedModel(f"a scikit-learn {type(model).__name__}")
        return model, []
    final = model.steps[-1][1]
    if type(final).__name__ not in ESTIMATORS:
        raise UnsupportedModel(f"a Pipeline ending in {type(final).__name__}")
    steps = [step for _, step in model.steps[:-1]]
    for step in steps:
        _check_transformer(step)
    return final, [type(step).__name__ for step in steps]


def _check_transformer(step: object) -> None:
    if isinstance(step, str) and step in ("passthrough", "drop"):
        return
    name = type(step).__name__
    if name == "FunctionTransformer" and getattr(step, "func", None) is None:
        return  # how a fitted ColumnTransformer stores remainder="passthrough"
    if name not in TRANSFORMERS:
        raise UnsupportedModel(f"a pipeline step {name}")
    children: list[object] = []
    if name == "ColumnTransformer":
        children = [t for _, t, _ in step.transformers_]  # type: ignore[attr-defined]
    elif name == "Pipeline":
        children = [t for _, t in step.steps]  # type: ignore[attr-defined]
    for child in children:
        _check_transformer(child)


def _multi_output(final: object, task: str) -> bool:
    if int(getattr(final, "n_outputs_", 1)) > 1:
        return True
    coef = getattr(final, "coef_", None)
    return task == REGRESSION and coef is not None and np.ndim(coef) > 1


def _labels(final: object) -> tuple[str | int, ...]:
    classes = np.asarray(final.classes_)  # type: ignore[attr-defined]
    if classes.dtype.kind in "biuf":
        return tuple(int(c) for c in classes)
    return tuple(str(c) for c in classes)


def _initial_types(plan: InputPlan) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    types = {
        "FP32": FloatTensorType,
        "FP64": DoubleTensorType,
        "INT64": Int64TensorType,
        "BYTES": StringTensorType,
    }
    if not plan.per_column:
        matrix = DoubleTensorType if plan.precision == "float64" else FloatTensorType
        return [(MATRIX_INPUT, matrix([None, len(plan.feature_names)]))]
    return [
        (name, types[datatype]([None, 1]))
        for name, datatype in zip(plan.feature_names, plan.feature_types, strict=True)
    ]
