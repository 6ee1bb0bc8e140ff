"""XGBoost models (``XGBClassifier``, ``XGBRegressor``) through onnxmltools.

Precision: XGBoost casts inputs to FP32 and stores FP32 thresholds with the rule ``x < t``,
exactly what ``BRANCH_LT`` on FP32 computes, so decisions agree bit for bit. Leaf values
are summed in FP32 on both sides, possibly in a different order. XGBoost rounds its inputs to
FP32 itself, so a float64 plan gets DOUBLE inputs cast to FP32 first: the same values.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from converters.fidelity import Scores
from converters.inputs import MATRIX_INPUT
from converters.kinds import CLASSIFICATION, REGRESSION, TARGET_OPSET, ModelFacts, UnsupportedModel
from converters.widen import cast_inputs_to_float
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    import onnx

    from converters.inputs import InputPlan

_OBJECTIVES = {
    "binary:logistic": CLASSIFICATION,
    "multi:softprob": CLASSIFICATION,
    "reg:squarederror": REGRESSION,
    "reg:absoluteerror": REGRESSION,
    "reg:pseudohubererror": REGRESSION,
}
# multi:softmax is left out: its predict_proba is one-hot, the converted graph's is not.
_NOTE = "FP32 thresholds and `x < t` on both sides (decisions exact); leaves summed in FP32"


class XGBoostBackend:
    """XGBoost scikit-learn estimators (see the module docstring)."""

    framework: str = "xgboost"
    supported_kinds: tuple[str, ...] = (
        "XGBClassifier (binary:logistic, multi:softprob)",
        "XGBRegressor (reg:squarederror, reg:absoluteerror, reg:pseudohubererror)",
    )

    def accepts(self, model: object) -> bool:
        """Whether the model is an XGBoost estimator or booster."""
        import xgboost

        return isinstance(model, xgboost.XGBModel | xgboost.Booster)

    def describe(self, model: object) -> ModelFacts:
        """The facts of an ``XGBClassifier`` or ``XGBRegressor``.

        Raises:
            UnsupportedModel: a bare Booster, a ranker, or an unsupported objective.
            InvalidArgument: an estimator that is not fitted.
        """
        import onnxmltools
        import xgboost

        if not isinstance(model, xgboost.XGBClassifier | xgboost.XGBRegressor):
            raise UnsupportedModel(f"an XGBoost {type(model).__name__}")
        booster = _booster(model)
        config = json.loads(booster.save_config())
        objective = str(config["learner"]["objective"]["name"])
        task = _OBJECTIVES.get(objective)
        if task is None or (task == CLASSIFICATION) != isinstance(model, xgboost.XGBClassifier):
            raise UnsupportedModel(f"an {type(model).__name__} with objective {objective!r}")
        names = booster.feature_names
        return ModelFacts(
            kind=type(model).__name__,
            framework=self.framework,
            framework_version=xgboost.__version__,
            converter=f"onnxmltools {onnxmltools.__version__}",
            task=task,
            class_labels=_labels(model) if task == CLASSIFICATION else (),
            feature_names=None if names is None else tuple(names),
            n_features=booster.num_features(),
            notes=(_NOTE,),
        )

    def to_onnx(self, model: object, facts: ModelFacts, plan: InputPlan) -> onnx.ModelProto:
        """Convert with onnxmltools (its XGBoost graphs carry no ZipMap)."""
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        converted: onnx.ModelProto = convert_xgboost(
            _anonymous_copy(model),
            name="modelyard",
            initial_types=[(MATRIX_INPUT, FloatTensorType([None, facts.n_features]))],
            target_opset=TARGET_OPSET,
        )
        if plan.precision == "float64":
            cast_inputs_to_float(converted)
        return converted

    def predict(self, model: object, facts: ModelFacts, plan: InputPlan) -> Scores:
        """Score ``plan.frame`` with ``predict``/``predict_proba``."""
        estimator: Any = model
        features: Any = plan.frame if facts.feature_names else plan.frame.to_numpy()
        if facts.task == CLASSIFICATION:
            return Scores(
                labels=np.asarray(estimator.predict(features)),
                values=np.asarray(estimator.predict_proba(features), dtype=np.float64),
            )
        return Scores(labels=None, values=np.asarray(estimator.predict(features), np.float64))


def _booster(model: Any) -> Any:
    from sklearn.exceptions import NotFittedError

    try:
        return model.get_booster()
    except NotFittedError:
        raise InvalidArgument(f"the {type(model).__name__} is not fitted") from None


def _anonymous_copy(model: Any) -> Any:
    """The model with its booster's feature names dropped (onnxmltools expects ``f0..``)."""
    import copy

    if _booster(model).feature_names is None:
        return model
    clone = copy.deepcopy(model)
    clone.get_booster().feature_names = None
    return clone


def _labels(model: Any) -> tuple[str | int, ...]:
    return tuple(int(c) for c in np.asarray(model.classes_))
