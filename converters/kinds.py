"""What a model is: the facts every backend reports, and the backend contract.

A *backend* knows one framework (scikit-learn, LightGBM, XGBoost). It recognises its models,
states their facts (kind, task, classes, expected features), converts them to a raw ONNX
graph and scores a sample natively. :func:`identify` asks each backend in turn; a model no
backend accepts is refused with the list of supported kinds.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

from modelyard.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Callable

    import onnx

    from converters.fidelity import Scores
    from converters.inputs import InputPlan

CLASSIFICATION = "classification"
REGRESSION = "regression"
TARGET_OPSET = 15
"""Default-domain opset of every converted graph (the newest onnxmltools supports)."""
ML_OPSET = 3
"""``ai.onnx.ml`` opset: TreeEnsemble with ``*_as_tensor`` attributes exists from 3 on."""


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What a backend knows about one model before converting it.

    Attributes:
        kind: the supported kind it is, e.g. ``LGBMClassifier`` or
            ``Pipeline(ColumnTransformer, LogisticRegression)``.
        framework: ``scikit-learn``, ``lightgbm`` or ``xgboost``.
        framework_version: the installed version of that framework.
        converter: the converter library and version, e.g. ``skl2onnx 1.20.0``.
        task: ``classification`` or ``regression``.
        class_labels: the classes in probability-column order (classifiers).
        feature_names: the column names the model was trained with, or ``None``.
        n_features: the number of input columns.
        per_column: one ONNX input per raw column (``ColumnTransformer`` pipelines).
        notes: known precision limits of this kind, copied into the fidelity report.
        normalize_name: how the framework respells a column name (LightGBM), if it does.
    """

    kind: str
    framework: str
    framework_version: str
    converter: str
    task: str
    class_labels: tuple[str | int, ...]
    feature_names: tuple[str, ...] | None
    n_features: int
    per_column: bool = False
    notes: tuple[str, ...] = ()
    normalize_name: Callable[[str], str] | None = None


class Backend(Protocol):
    """One framework's conversion rules.

    ``accepts`` must be cheap and never raise; the other methods raise
    :class:`UnsupportedModel` (or another ``InvalidArgument``) for models they cannot handle.
    """

    framework: str
    supported_kinds: tuple[str, ...]

    def accepts(self, model: object) -> bool:
        """Whether the model belongs to this backend's framework."""
        ...

    def describe(self, model: object) -> ModelFacts:
        """The facts of a model this backend accepts."""
        ...

    def to_onnx(self, model: object, facts: ModelFacts, plan: InputPlan) -> onnx.ModelProto:
        """The converter's raw graph (outputs renamed and stamped later)."""
        ...

    def predict(self, model: object, facts: ModelFacts, plan: InputPlan) -> Scores:
        """Native labels and probabilities (or predictions) of ``plan.frame``."""
        ...


class UnsupportedModel(InvalidArgument):
    """The model (or a step of it) is not a kind the converters support."""

    def __init__(self, what: str, backends: tuple[Backend, ...] = ()) -> None:
        kinds = "; ".join(f"{b.framework}: {', '.join(b.supported_kinds)}" for b in backends)
        super().__init__(f"cannot convert {what}; supported kinds are {kinds}")
        self.what = what


class ConversionFailed(FailedPrecondition):
    """The converter or onnxruntime failed on a model of a supported kind.

    Usually a setting the converter does not handle (an option, a categorical split); the
    message names the kind, the converter and its first error line.
    """

    def __init__(self, facts: ModelFacts, exc: BaseException) -> None:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        super().__init__(
            f"{facts.converter} could not convert this {facts.kind}: "
            f"{type(exc).__name__}: {detail[:300]}"
        )


def identify(model: object, backends: tuple[Backend, ...]) -> tuple[Backend, ModelFacts]:
    """Find the backend of a model and its facts.

    Args:
        model: a fitted estimator, pipeline or booster.
        backends: the backends to ask, in order (framework wrappers before scikit-learn,
            since LightGBM and XGBoost estimators are scikit-learn estimators too).

    Returns:
        The backend and the model's facts.

    Raises:
        UnsupportedModel: no backend accepts the model, or its backend rejects it.
    """
    for backend in backends:
        if backend.accepts(model):
            try:
                return backend, backend.describe(model)
            except UnsupportedModel as exc:
                raise UnsupportedModel(exc.what, backends) from None
    raise UnsupportedModel(f"a {type(model).__module__}.{type(model).__qualname__}", backends)
