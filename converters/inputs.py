"""From a sample table to the ONNX model's inputs.

Two layouts, fixed by the model (see ``docs/model-conventions.md``):

- **matrix**: all-numeric models take one input ``input`` of shape ``[-1, n_features]``,
  columns in the model's feature order, FP32 or FP64 (the graph's precision);
- **per column**: pipelines that start with a ``ColumnTransformer`` take one ``[-1, 1]`` input
  per raw column, named after it: FP32 or FP64 (floats), INT64 (integers, booleans) or BYTES
  (strings).

:func:`plan_inputs` checks the sample against what the model expects (missing and extra
columns are named) and keeps it as given (float64); :meth:`InputPlan.as_fed` is the sample
as the ONNX model of the plan's precision receives it (FP32 columns rounded), so the native
model can be scored on both.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray

MATRIX_INPUT = "input"
RESERVED_NAMES = frozenset({"label", "probabilities", "prediction"})


@dataclasses.dataclass(frozen=True)
class InputPlan:
    """The model's inputs and the sample shaped for them.

    Attributes:
        per_column: one input per raw column (else one ``input`` matrix).
        feature_names: column order of the model.
        feature_types: OIP datatype of each column (``FP32`` or ``FP64``, ``INT64``,
            ``BYTES``).
        frame: the sample as given: floats as float64, integers as int64, strings as str.
    """

    per_column: bool
    feature_names: tuple[str, ...]
    feature_types: tuple[str, ...]
    frame: pd.DataFrame

    @property
    def precision(self) -> str:
        """``float64`` when the float inputs are FP64, else ``float32``."""
        return "float64" if "FP64" in self.feature_types else "float32"

    def with_precision(self, precision: str) -> InputPlan:
        """The same plan with FP32 (``float32``) or FP64 (``float64``) float inputs."""
        new, old = ("FP64", "FP32") if precision == "float64" else ("FP32", "FP64")
        types = tuple(new if t == old else t for t in self.feature_types)
        return dataclasses.replace(self, feature_types=types)

    def as_fed(self) -> InputPlan:
        """The plan whose frame holds the values the ONNX model receives (FP32 rounded)."""
        if "FP32" not in self.feature_types:
            return self
        frame = self.frame.copy()
        for name, datatype in zip(self.feature_names, self.feature_types, strict=True):
            if datatype == "FP32":
                frame[name] = frame[name].to_numpy(dtype=np.float32).astype(np.float64)
        return dataclasses.replace(self, frame=frame)

    def float_columns(self) -> tuple[str, ...]:
        """The columns fed as FP32 or FP64."""
        return tuple(
            n for n, t in zip(self.feature_names, self.feature_types, strict=True) if t[:2] == "FP"
        )

    def onnx_feed(self) -> dict[str, NDArray[np.generic]]:
        """The ``onnxruntime`` feed for the sample.

        Returns:
            input name -> array, in the dtypes of the ONNX inputs.
        """
        if not self.per_column:
            dtype = np.float64 if self.precision == "float64" else np.float32
            return {MATRIX_INPUT: self.frame.to_numpy(dtype=dtype)}
        feed: dict[str, NDArray[np.generic]] = {}
        for name, datatype in zip(self.feature_names, self.feature_types, strict=True):
            column = self.frame[name]
            if datatype == "FP32":
                feed[name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
            elif datatype == "FP64":
                feed[name] = column.to_numpy(dtype=np.float64).reshape(-1, 1)
            elif datatype == "INT64":
                feed[name] = column.to_numpy(dtype=np.int64).reshape(-1, 1)
            else:
                feed[name] = column.to_numpy(dtype=object).reshape(-1, 1)
        return feed


def plan_inputs(
    sample: pd.DataFrame | NDArray[np.generic],
    *,
    expected: tuple[str, ...] | None,
    n_features: int,
    per_column: bool,
    normalize: Callable[[str], str] | None = None,
) -> InputPlan:
    """Check the sample against the model and shape it for the ONNX inputs.

    Args:
        sample: a table (column names matter) or a 2-D array (column order matters).
        expected: the model's feature names, or ``None`` when it was trained without names.
        n_features: the number of features the model expects.
        per_column: the model takes one input per raw column.
        normalize: how the framework respells column names; sample columns are matched to
            ``expected`` through it and keep their own spelling.

    Returns:
        The plan (FP32 float inputs): names, types and the sample as given.

    Raises:
        InvalidArgument: empty sample, missing or extra columns (named), non-numeric columns
            for a numeric model, missing strings, or a column named like an output.
    """
    frame = _as_frame(sample, expected, n_features)
    if len(frame) == 0:
        raise InvalidArgument("the sample has no rows")
    names = _check_columns(frame, expected, n_features, normalize or str)
    frame = frame.loc[:, list(names)]
    clashes = sorted(RESERVED_NAMES & set(names)) if per_column else []
    if clashes:
        raise InvalidArgument(f"feature names {clashes} clash with the output names")
    if per_column:
        types = tuple(_column_type(frame[name], name) for name in names)
    else:
        non_numeric = [n for n in names if frame[n].dtype.kind not in "biuf"]
        if non_numeric:
            raise InvalidArgument(f"the model takes numbers but columns {non_numeric} are not")
        types = tuple("FP32" for _ in names)
    return InputPlan(
        per_column=per_column,
        feature_names=names,
        feature_types=types,
        frame=_as_given(frame, types),
    )


def _as_frame(
    sample: pd.DataFrame | NDArray[np.generic], expected: tuple[str, ...] | None, n: int
) -> pd.DataFrame:
    if isinstance(sample, pd.DataFrame):
        frame = sample.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame
    array = np.asarray(sample)
    if array.ndim != 2:
        raise InvalidArgument(f"the sample must be a 2-D table, got {array.ndim} dimensions")
    if array.shape[1] != n:
        raise InvalidArgument(f"the sample has {array.shape[1]} columns, the model expects {n}")
    names = expected if expected is not None else tuple(f"f{i}" for i in range(n))
    return pd.DataFrame(array, columns=list(names))


def _check_columns(
    frame: pd.DataFrame,
    expected: tuple[str, ...] | None,
    n: int,
    normalize: Callable[[str], str],
) -> tuple[str, ...]:
    """The sample's column names in the model's order; missing and extra ones named."""
    present = tuple(str(c) for c in frame.columns)
    if expected is None:
        if len(present) != n:
            raise InvalidArgument(f"the sample has {len(present)} columns, the model expects {n}")
        return present
    spelled = {normalize(c): c for c in present}
    missing = [c for c in expected if c not in spelled]
    extra = [c for c in present if normalize(c) not in set(expected)]
    if missing or extra:
        parts = [f"missing columns {missing}"] if missing else []
        parts += [f"extra columns {extra}"] if extra else []
        raise InvalidArgument(f"the sample does not match the model: {'; '.join(parts)}")
    return tuple(spelled[c] for c in expected)


def _column_type(column: pd.Series, name: str) -> str:
    kind = column.dtype.kind
    if kind == "f":
        return "FP32"
    if kind in "biu":
        return "INT64"
    if column.isna().any():
        raise InvalidArgument(f"string column {name!r} has missing values; fill them first")
    return "BYTES"


def _as_given(frame: pd.DataFrame, types: tuple[str, ...]) -> pd.DataFrame:
    seen = {}
    for name, datatype in zip(frame.columns, types, strict=True):
        column = frame[name]
        if datatype == "FP32":
            seen[name] = column.to_numpy(dtype=np.float64)
        elif datatype == "INT64":
            seen[name] = column.to_numpy(dtype=np.int64)
        else:
            seen[name] = column.astype(str).to_numpy(dtype=object)
    return pd.DataFrame(seen, index=pd.RangeIndex(len(frame)))
