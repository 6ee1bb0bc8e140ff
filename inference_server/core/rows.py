"""Rows of feature values <-> model tensors, for the simple JSON endpoints.

``/predict`` and ``/predict/batch`` take rows either as objects (feature name -> value) or as
lists (values in the model's feature order). Models follow the converters' conventions
(SERVER_CONTRACT.md): an all-numeric model takes one input ``[-1, n_features]`` whose column
order is ``modelyard.feature_names``; a mixed-type pipeline takes one ``[-1, 1]`` input per
raw column, named after the column. The result is read from the ``label`` /
``probabilities`` (classifiers) or ``prediction`` (regressors) outputs, falling back to the
first integer/string output as label and the first float output as scores.

>>> from modelyard.models import ModelSignature, TensorSpec
>>> sig = ModelSignature(inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 2)),),
...                      outputs=(), feature_names=("a", "b"))
>>> [i.data.tolist() for i in rows_to_inputs([{"b": 2, "a": 1}, [3, 4]], sig)]
[[[1.0, 2.0], [3.0, 4.0]]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inference_server.core.tensors import decode_values
from inference_server.core.types import PredictResult, RequestInput
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

    from modelyard.models import ModelSignature, Scalar, TensorSpec

Row = dict[str, "Scalar"] | list["Scalar"]


def _ordered(row: Row, names: Sequence[str], index: int) -> list[Any]:
    if isinstance(row, list):
        if len(row) != len(names):
            raise InvalidArgument(f"row {index}: {len(row)} values, the model takes {len(names)}")
        return row
    if not names:
        raise InvalidArgument("the model has no feature names; send each row as a list")
    missing = [n for n in names if n not in row]
    if missing:
        raise InvalidArgument(f"row {index}: missing feature {missing[0]!r}")
    if len(row) != len(names):
        extra = [k for k in row if k not in set(names)]
        raise InvalidArgument(f"row {index}: unknown feature {extra[0]!r}")
    return [row[n] for n in names]


def _nan_for_none(values: list[Any], datatype: str) -> list[Any]:
    if datatype in ("FP32", "FP64", "FP16"):
        return [float("nan") if v is None else v for v in values]
    return values


def rows_to_inputs(rows: Sequence[Row], signature: ModelSignature) -> list[RequestInput]:
    """Map rows to the model's input tensors (``None`` becomes NaN in float inputs).

    Raises:
        InvalidArgument: no rows, a row with missing/unknown features or the wrong length,
            or values that do not fit the input's datatype.
    """
    if not rows:
        raise InvalidArgument("no rows given")
    specs = signature.inputs
    if len(specs) == 1 and len(specs[0].shape) == 2 and specs[0].shape[1] != 1:
        spec = specs[0]
        width = spec.shape[1] if spec.shape[1] > 0 else len(signature.feature_names)
        names = signature.feature_names or tuple(str(i) for i in range(width))
        flat = [v for i, row in enumerate(rows) for v in _ordered(row, names, i)]
        shape = (len(rows), len(names))
        return [_input(spec, shape, flat)]
    names = tuple(s.name for s in specs)
    columns = list(zip(*(_ordered(row, names, i) for i, row in enumerate(rows)), strict=True))
    return [
        _input(spec, (len(rows), 1) if len(spec.shape) == 2 else (len(rows),), list(column))
        for spec, column in zip(specs, columns, strict=True)
    ]


def _input(spec: TensorSpec, shape: tuple[int, ...], values: list[Any]) -> RequestInput:
    if spec.datatype == "BYTES":
        values = [v if isinstance(v, str | bytes) else str(v) for v in values]
    data = decode_values(spec.name, spec.datatype, shape, _nan_for_none(values, spec.datatype))
    return RequestInput(name=spec.name, datatype=spec.datatype, shape=shape, data=data)


def _pick(
    signature: ModelSignature, outputs: list[np.ndarray], name: str, kinds: str
) -> np.ndarray | None:
    for spec, array in zip(signature.outputs, outputs, strict=True):
        if spec.name == name:
            return array
    for array in outputs:
        if array.dtype.kind in kinds:
            return array
    return None


def _scalar(value: Any) -> Scalar:
    return value.decode() if isinstance(value, bytes) else value


def result_from_outputs(
    *,
    model_name: str,
    model_version: str,
    signature: ModelSignature,
    task: str,
    class_labels: Sequence[Scalar],
    outputs: list[np.ndarray],
) -> PredictResult:
    """Build the simple JSON answer from the session outputs of some rows."""
    label = _pick(signature, outputs, "label", "iuOUSb")
    if task == "regression" or (not task and label is None):
        values = _pick(signature, outputs, "prediction", "f")
        preds = [] if values is None else values.reshape(len(values), -1)[:, 0].tolist()
        return PredictResult(model_name=model_name, model_version=model_version, predictions=preds)
    probs = _pick(signature, outputs, "probabilities", "f")
    return PredictResult(
        model_name=model_name,
        model_version=model_version,
        labels=None if label is None else [_scalar(v) for v in label.reshape(-1).tolist()],
        probabilities=None if probs is None else probs.reshape(len(probs), -1).tolist(),
        class_labels=list(class_labels) or None,
    )
