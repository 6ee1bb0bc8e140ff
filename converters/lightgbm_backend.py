"""LightGBM models (``LGBMClassifier``, ``LGBMRegressor``, ``Booster``) through onnxmltools.

Precision: LightGBM compares ``x <= t`` in float64; onnxmltools writes ``t`` rounded to the
nearest FP32. :func:`~converters.thresholds.round_thresholds_down` rewrites the thresholds
from the booster's dump so decisions on FP32 inputs are exact. Leaf values are summed in FP32
by onnxruntime (float64 natively). A float64 plan gets DOUBLE inputs and the booster's float64
thresholds (:func:`~converters.widen.set_double_thresholds`): the comparisons are LightGBM's.

LightGBM stores column names with whitespace replaced by ``_``; samples are matched through
:func:`sanitize`, and the metadata keeps the sample's own spelling.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from converters.fidelity import Scores
from converters.inputs import MATRIX_INPUT
from converters.kinds import CLASSIFICATION, REGRESSION, TARGET_OPSET, ModelFacts, UnsupportedModel
from converters.thresholds import round_thresholds_down
from converters.widen import NativeSplit as DoubleSplit
from converters.widen import WidenError, double_inputs, set_double_thresholds
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Iterator

    import onnx

    from converters.inputs import InputPlan
    from converters.thresholds import NativeSplit

_CLASSIFICATION_OBJECTIVES = ("binary", "multiclass", "softmax")
_REGRESSION_OBJECTIVES = (
    "regression", "regression_l1", "regression_l2", "l1", "l2", "mse", "mae", "rmse",
    "huber", "quantile", "poisson", "gamma", "tweedie",
)  # fmt: skip
"""Objectives onnxmltools converts (``fair`` and ``mape`` it rejects; ``multiclassova`` it
would convert with a softmax instead of one sigmoid per class)."""
_ANONYMOUS = re.compile(r"Column_\d+")
_NOTE = (
    "thresholds rounded down to FP32 (decisions on FP32 inputs are exact); leaves summed in FP32"
)


class LightGBMBackend:
    """LightGBM estimators and boosters (see the module docstring)."""

    framework: str = "lightgbm"
    supported_kinds: tuple[str, ...] = (
        "LGBMClassifier (binary, multiclass)",
        "LGBMRegressor",
        "Booster (binary, multiclass, regression objectives)",
    )

    def accepts(self, model: object) -> bool:
        """Whether the model is a LightGBM estimator or booster."""
        import lightgbm

        return isinstance(model, lightgbm.LGBMModel | lightgbm.Booster)

    def describe(self, model: object) -> ModelFacts:
        """The facts of a LightGBM model.

        Raises:
            UnsupportedModel: a ranker, or an objective that is neither classification nor
                regression.
            InvalidArgument: an estimator that is not fitted.
        """
        import lightgbm
        import onnxmltools

        booster = _booster(model)
        objective = str(booster.dump_model(num_iteration=1)["objective"]).split()[0]
        task = _task(objective, model)
        names = tuple(booster.feature_name())
        anonymous = all(_ANONYMOUS.fullmatch(n) for n in names)
        return ModelFacts(
            kind=type(model).__name__,
            framework=self.framework,
            framework_version=lightgbm.__version__,
            converter=f"onnxmltools {onnxmltools.__version__}",
            task=task,
            class_labels=_labels(model, booster) if task == CLASSIFICATION else (),
            feature_names=None if anonymous else names,
            n_features=booster.num_feature(),
            notes=(_NOTE,),
            normalize_name=sanitize,
        )

    def to_onnx(self, model: object, facts: ModelFacts, plan: InputPlan) -> onnx.ModelProto:
        """Convert with onnxmltools (ZipMap off), then fix the thresholds.

        FP32 plans get thresholds rounded down to FP32; float64 plans the booster's own.
        """
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        converted: onnx.ModelProto = convert_lightgbm(
            model,
            name="modelyard",
            initial_types=[(MATRIX_INPUT, FloatTensorType([None, facts.n_features]))],
            target_opset=TARGET_OPSET,
            zipmap=False,
        )
        trees = _booster(model).dump_model()["tree_info"]
        if plan.precision == "float64":
            set_double_thresholds(converted, [_double_tree(t["tree_structure"]) for t in trees])
            double_inputs(converted)
        else:
            round_thresholds_down(converted, _native_splits(trees))
        return converted

    def predict(self, model: object, facts: ModelFacts, plan: InputPlan) -> Scores:
        """Score ``plan.frame`` natively (``predict_proba`` or the booster's raw output)."""
        import lightgbm

        estimator: Any = model
        named = hasattr(model, "feature_names_in_")
        features: Any = plan.frame if named else plan.frame.to_numpy()
        if isinstance(model, lightgbm.Booster):
            out = np.asarray(model.predict(plan.frame.to_numpy()), dtype=np.float64)
            if facts.task == REGRESSION:
                return Scores(labels=None, values=out.reshape(-1))
            probs = np.column_stack([1.0 - out, out]) if out.ndim == 1 else out
            return Scores(labels=np.argmax(probs, axis=1).astype(np.int64), values=probs)
        if facts.task == CLASSIFICATION:
            return Scores(
                labels=np.asarray(estimator.predict(features)),
                values=np.asarray(estimator.predict_proba(features), dtype=np.float64),
            )
        return Scores(labels=None, values=np.asarray(estimator.predict(features), np.float64))


def _native_splits(trees: list[dict[str, Any]]) -> Iterator[NativeSplit]:
    """Every numerical ``<=`` split of a ``dump_model()["tree_info"]``."""
    stack = [tree["tree_structure"] for tree in trees]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        if node.get("decision_type") == "<=":
            yield int(node["split_feature"]), float(node["threshold"])
        stack.extend((node["left_child"], node["right_child"]))


def _double_tree(node: dict[str, Any]) -> DoubleSplit | None:
    """A dumped LightGBM tree as :class:`~converters.widen.NativeSplit` (leaves: None).

    Raises:
        WidenError: a categorical split (no ``<=`` threshold).
    """
    if "split_feature" not in node:
        return None
    if node.get("decision_type") != "<=":
        raise WidenError(f"a {node.get('decision_type')!r} split has no float64 threshold")
    return DoubleSplit(
        feature=int(node["split_feature"]),
        threshold=float(node["threshold"]),
        left=_double_tree(node["left_child"]),
        right=_double_tree(node["right_child"]),
    )


def sanitize(name: str) -> str:
    """LightGBM's spelling of a column name (whitespace becomes ``_``).

    >>> sanitize("sepal length (cm)")
    'sepal_length_(cm)'
    """
    return re.sub(r"\s", "_", name)


def _booster(model: object) -> Any:
    import lightgbm
    from sklearn.exceptions import NotFittedError

    if isinstance(model, lightgbm.Booster):
        return model
    try:
        return model.booster_  # type: ignore[attr-defined]
    except (AttributeError, NotFittedError):
        raise InvalidArgument(f"the {type(model).__name__} is not fitted") from None


def _task(objective: str, model: object) -> str:
    import lightgbm

    if isinstance(model, lightgbm.LGBMRanker):
        raise UnsupportedModel("a LightGBM LGBMRanker")
    if objective in _CLASSIFICATION_OBJECTIVES:
        return CLASSIFICATION
    if objective in _REGRESSION_OBJECTIVES:
        return REGRESSION
    raise UnsupportedModel(f"a LightGBM model with objective {objective!r}")


def _labels(model: object, booster: Any) -> tuple[str | int, ...]:
    classes = getattr(model, "classes_", None)
    if classes is None:
        n = max(2, int(booster.dump_model(num_iteration=1).get("num_class", 1)))
        return tuple(range(n))
    array = np.asarray(classes)
    if array.dtype.kind in "biuf":
        return tuple(int(c) for c in array)
    return tuple(str(c) for c in array)
