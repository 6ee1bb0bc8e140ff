"""Build (once) the issue's reference model: LightGBM binary, 300 trees, 31 leaves, 32 features.

Writes ``<dir>/reference.onnx`` (onnxmltools, ``zipmap=False``, outputs renamed to the
modelyard convention ``label``/``probabilities``) and ``<dir>/reference.txt`` (the native
LightGBM booster, for the naive baseline). Usage: ``python reference_model.py DIR``.
"""

from __future__ import annotations

import pathlib
import sys

import lightgbm
import onnx
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType
from sklearn.datasets import make_classification


def build(directory: pathlib.Path) -> pathlib.Path:
    """Train and convert the reference model unless it exists; return the ONNX path."""
    onnx_path = directory / "reference.onnx"
    if onnx_path.exists():
        return onnx_path
    directory.mkdir(parents=True, exist_ok=True)
    x, y = make_classification(n_samples=50_000, n_features=32, n_informative=16, random_state=0)
    model = lightgbm.LGBMClassifier(
        n_estimators=300, num_leaves=31, n_jobs=1, verbose=-1, random_state=0
    )
    model.fit(x, y)
    model.booster_.save_model(str(directory / "reference.txt"))
    proto = onnxmltools.convert_lightgbm(
        model,
        initial_types=[("input", FloatTensorType([None, 32]))],
        zipmap=False,
        target_opset=15,
    )
    renames = {proto.graph.output[0].name: "label", proto.graph.output[1].name: "probabilities"}
    for node in proto.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
    for output in proto.graph.output:
        output.name = renames[output.name]
        # onnxmltools declares label as [1]; it is one label per row.
        output.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.save(proto, str(onnx_path))
    return onnx_path


if __name__ == "__main__":
    print(build(pathlib.Path(sys.argv[1])))
