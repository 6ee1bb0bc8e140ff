"""Work around skl2onnx 1.20's HistGradientBoosting converter under protobuf 7.

The converter writes ``nodes_missing_value_tracks_true`` with Python ``False`` for leaves;
protobuf 7 refuses a bool in an int field ("Expected an int, got a boolean"). The fix is
scoped to one ``convert_sklearn`` call through its ``custom_conversion_functions`` argument:
the registered converter runs unchanged against a container whose ``add_node`` turns boolean
list entries into ints. The same mechanism converts ``SimpleImputer`` on DOUBLE inputs with
standard ops (onnxruntime's ``Imputer`` is FP32-only). Nothing global is patched.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class _IntFlagContainer:
    """Delegates to the skl2onnx container; ``add_node`` writes boolean lists as ints."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        fixed = {
            key: [int(v) if isinstance(v, bool | np.bool_) else v for v in value]
            if isinstance(value, list)
            else value
            for key, value in attrs.items()
        }
        return self._inner.add_node(*args, **fixed)


def _double_imputer(registered: Any) -> Any:
    """SimpleImputer on DOUBLE inputs as ``Where(IsNaN(x), statistics, x)``.

    skl2onnx writes the ``ai.onnx.ml`` ``Imputer`` op, which onnxruntime runs on FP32 only.
    Other inputs (and other missing-value markers) go to the registered converter.
    """
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    def converter(scope: Any, operator: Any, container: Any) -> None:
        imputer = operator.raw_operator
        stats = np.asarray(imputer.statistics_, dtype=np.float64)
        if not isinstance(operator.inputs[0].type, DoubleTensorType) or len(operator.inputs) != 1:
            registered(scope, operator, container)
            return
        if not np.isnan(imputer.missing_values) or np.isnan(stats).any():
            raise NotImplementedError("a double SimpleImputer needs NaN markers and statistics")
        source, target = operator.inputs[0].full_name, operator.outputs[0].full_name
        fill = scope.get_unique_variable_name("fill")
        container.add_initializer(fill, TensorProto.DOUBLE, [1, len(stats)], stats.tolist())
        missing = scope.get_unique_variable_name("missing")
        container.add_node(
            "IsNaN", [source], [missing], name=scope.get_unique_operator_name("IsNaN")
        )
        container.add_node(
            "Where", [missing, fill, source], [target], name=scope.get_unique_operator_name("Where")
        )

    return converter


def _float_tree(registered: Any) -> Any:
    """RandomForest/GradientBoosting on a DOUBLE input: Cast to FP32, convert, Cast back.

    scikit-learn's trees cast X to FP32 themselves, so the FP32 tree on the cast input is the
    native computation. skl2onnx's own double tree path loops forever on infinite thresholds
    (scikit-learn's NaN splits) and declares double scores onnxruntime does not produce.
    The operator's input and outputs are swapped for FP32 variables during the registered
    converter's run and restored after (skl2onnx's lists refuse item assignment, hence
    ``list.__setitem__``).
    """
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    def converter(scope: Any, operator: Any, container: Any) -> None:
        source = operator.inputs[0]
        if not isinstance(source.type, DoubleTensorType):
            registered(scope, operator, container)
            return
        outputs = list(operator.outputs)
        narrow = scope.declare_local_variable("tree_input_fp32", FloatTensorType(source.type.shape))
        container.add_node(
            "Cast", [source.full_name], [narrow.full_name], to=TensorProto.FLOAT,
            name=scope.get_unique_operator_name("Cast"),
        )  # fmt: skip
        scores = [
            scope.declare_local_variable(f"{o.raw_name}_fp32", FloatTensorType(o.type.shape))
            if isinstance(o.type, DoubleTensorType)
            else o
            for o in outputs
        ]
        list.__setitem__(operator.inputs, 0, narrow)
        for i, score in enumerate(scores):
            list.__setitem__(operator.outputs, i, score)
        try:
            registered(scope, operator, container)
        finally:
            list.__setitem__(operator.inputs, 0, source)
            for i, output in enumerate(outputs):
                list.__setitem__(operator.outputs, i, output)
        for score, output in zip(scores, outputs, strict=True):
            if score is not output:
                container.add_node(
                    "Cast", [score.full_name], [output.full_name], to=TensorProto.DOUBLE,
                    name=scope.get_unique_operator_name("Cast"),
                )  # fmt: skip

    return converter


def conversion_overrides() -> dict[type, Any]:
    """``custom_conversion_functions`` for ``convert_sklearn`` fixing the HGB converters.

    Returns:
        estimator type -> converter wrapping the registered one.
    """
    from skl2onnx.common._registration import get_converter
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    overrides: dict[type, Any] = {}
    for estimator in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        registered = get_converter(f"Sklearn{estimator.__name__}")

        def converter(scope: Any, operator: Any, container: Any, _conv: Any = registered) -> None:
            _conv(scope, operator, _IntFlagContainer(container))

        overrides[estimator] = converter
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.impute import SimpleImputer

    overrides[SimpleImputer] = _double_imputer(get_converter("SklearnSimpleImputer"))
    for tree in (
        RandomForestClassifier,
        RandomForestRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
    ):
        overrides[tree] = _float_tree(get_converter(f"Sklearn{tree.__name__}"))
    return overrides
