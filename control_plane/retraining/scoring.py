"""Score a table with an ONNX graph the way the server feeds it (one thread, one run).

The graph's declared inputs say how: one ``input`` matrix in the model's column order, or one
``[-1, 1]`` input per column; each input gets the element type it declares (float, double,
int64 or string). Retraining scores the candidate and the Production version with this, on the
same holdout rows.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": object,
    "tensor(bool)": np.bool_,
}


def score_frame(onnx_bytes: bytes, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every output of the graph for the rows of ``frame``, by output name.

    Raises:
        InvalidArgument: ``frame`` lacks a column the graph takes.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    names = json.loads(metadata.get("modelyard.feature_names", "[]")) or list(frame.columns)
    feed: dict[str, np.ndarray] = {}
    inputs = session.get_inputs()
    for spec in inputs:
        dtype = _DTYPES.get(spec.type)
        if dtype is None:
            raise InvalidArgument(f"input {spec.name!r} has an unsupported type {spec.type}")
        if len(inputs) == 1 and spec.name not in frame.columns:
            missing = sorted(set(names) - set(frame.columns))
            if missing:
                raise InvalidArgument(f"the table lacks the model's columns {missing}")
            feed[spec.name] = frame.loc[:, names].to_numpy(dtype=dtype)
        elif spec.name in frame.columns:
            feed[spec.name] = frame[spec.name].to_numpy(dtype=dtype).reshape(-1, 1)
        else:
            raise InvalidArgument(f"the table lacks the model's input column {spec.name!r}")
    outputs = session.run(None, feed)
    return {o.name: np.asarray(v) for o, v in zip(session.get_outputs(), outputs, strict=True)}
