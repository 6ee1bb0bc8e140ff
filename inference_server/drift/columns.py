"""Which columns a version's sketches cover: its input features and its prediction score.

Features follow the converters' conventions (``inference_server.core.rows``): an all-numeric
model takes one ``[-1, n_features]`` input whose columns are named by
``modelyard.feature_names``; otherwise each input is a feature named after the input (wider
inputs give ``name[j]``). The score is the positive-class probability of a binary
classifier, the label of a multiclass one, the prediction of a regressor (first float output
when the outputs carry no conventional names). A reference profile's ``score`` must follow
the same rule (docs/drift.md).

>>> import numpy as np
>>> from modelyard.models import ModelSignature, TensorSpec
>>> sig = ModelSignature(inputs=(TensorSpec(name="x", datatype="FP32", shape=(-1, 2)),),
...                      outputs=(TensorSpec(name="prediction", datatype="FP32", shape=(-1, 1)),),
...                      feature_names=("age", "income"))
>>> cols = feature_columns(sig, [np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)])
>>> {k: v.tolist() for k, v in cols.items()}
{'age': [1.0, 3.0], 'income': [2.0, 4.0]}
>>> score_column(sig, "regression", [np.array([[0.5], [0.7]])]).tolist()
[0.5, 0.7]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelyard.models import ModelSignature


def feature_columns(
    signature: ModelSignature, arrays: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """Feature name -> one value per row (views, no copies, for the 2-D single input)."""
    if len(arrays) == 1 and arrays[0].ndim == 2 and arrays[0].shape[1] != 1:
        matrix = arrays[0]
        names = signature.feature_names
        if len(names) != matrix.shape[1]:
            names = tuple(str(j) for j in range(matrix.shape[1]))
        return {name: matrix[:, j] for j, name in enumerate(names)}
    columns: dict[str, np.ndarray] = {}
    for spec, array in zip(signature.inputs, arrays, strict=True):
        flat = array.reshape(array.shape[0], -1) if array.ndim else array.reshape(1, 1)
        if flat.shape[1] == 1:
            columns[spec.name] = flat[:, 0]
        else:
            for j in range(flat.shape[1]):
                columns[f"{spec.name}[{j}]"] = flat[:, j]
    return columns


def _output(
    signature: ModelSignature, outputs: Sequence[np.ndarray], name: str, kinds: str
) -> np.ndarray | None:
    for spec, array in zip(signature.outputs, outputs, strict=False):
        if spec.name == name:
            return array
    return next((a for a in outputs if a.dtype.kind in kinds), None)


def score_column(
    signature: ModelSignature, task: str, outputs: Sequence[np.ndarray]
) -> np.ndarray | None:
    """The prediction score per row (see the module docstring), or None if there is none."""
    if not outputs or outputs[0].ndim == 0:
        return None
    rows = outputs[0].shape[0]
    label = _output(signature, outputs, "label", "iuOSUb")
    if task == "regression" or (not task and label is None):
        values = _output(signature, outputs, "prediction", "f")
        return None if values is None else values.reshape(rows, -1)[:, 0]
    probs = _output(signature, outputs, "probabilities", "f")
    if probs is not None and probs.reshape(rows, -1).shape[1] == 2:
        return probs.reshape(rows, -1)[:, 1]
    return None if label is None else label.reshape(rows)
