"""Double-precision graphs: FP64 inputs, float64 thresholds, FP32 only where it is exact.

onnxruntime 1.32 runs ``ai.onnx.ml`` opset-3 ``TreeEnsembleClassifier``/``Regressor`` on
DOUBLE inputs with ``nodes_values_as_tensor`` (float64 thresholds) and accumulates leaves in
double, returning FP32 scores (measured; ``docs/model-conventions.md``, "Precision"). The
converters write FP32 thresholds only, so this module rewrites their graphs:

- :func:`set_double_thresholds` aligns each graph tree with the native tree *structurally*
  (root to leaves, true branch = native left child) and writes the native float64 threshold
  of every split; a node whose feature or FP32 value does not match refuses the rewrite, so a
  threshold is never attached to the wrong split (value lookups would be ambiguous exactly
  where FP32 fails: 16777217 and 16777216 share an FP32);
- :func:`cast_inputs_to_float` gives the graph DOUBLE inputs cast to FP32 at the start, for
  native models that round their inputs to FP32 themselves (XGBoost, scikit-learn's
  RandomForest/GradientBoosting), where the cast provably changes nothing;
- :func:`float_trees_in_double_graph` casts the FP32 scores of the TreeEnsemble nodes in a
  skl2onnx double graph back to double for the rest of the graph.

>>> t = NativeSplit(feature=0, threshold=16777217.0, left=None, right=None)
>>> t.threshold - float(np.float32(t.threshold))
1.0
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

if TYPE_CHECKING:
    from collections.abc import Sequence

TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
ML_DOUBLE_OPSET = 3
"""``ai.onnx.ml`` opset that has ``nodes_values_as_tensor``."""


class WidenError(ValueError):
    """The graph cannot be rewritten to double precision (the message says why)."""


@dataclasses.dataclass(frozen=True)
class NativeSplit:
    """One native ``x[feature] <= threshold`` split; ``None`` children are leaves."""

    feature: int
    threshold: float
    left: NativeSplit | None
    right: NativeSplit | None


def set_double_thresholds(model: onnx.ModelProto, trees: Sequence[NativeSplit | None]) -> int:
    """Write the native float64 thresholds into every TreeEnsemble node, in place.

    Args:
        model: a converted graph whose tree ids follow ``trees``' order.
        trees: the native trees (``None`` for a single-leaf tree).

    Returns:
        The number of thresholds written.

    Raises:
        WidenError: a graph tree does not have the native tree's structure.
    """
    written = 0
    for node in model.graph.node:
        if node.op_type not in TREE_OPS:
            continue
        attrs = {a.name: a for a in node.attribute}
        values = _align(attrs, trees)
        node.attribute.remove(attrs["nodes_values"])
        node.attribute.append(
            helper.make_attribute(
                "nodes_values_as_tensor", numpy_helper.from_array(values, "nodes_values")
            )
        )
        written += int(np.count_nonzero(values))
    _ml_opset_at_least(model, ML_DOUBLE_OPSET)
    return written


def _align(
    attrs: dict[str, onnx.AttributeProto], trees: Sequence[NativeSplit | None]
) -> np.ndarray:
    tree_ids = list(attrs["nodes_treeids"].ints)
    node_ids = list(attrs["nodes_nodeids"].ints)
    index = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    ctx = _Tree(
        features=list(attrs["nodes_featureids"].ints),
        floats=list(attrs["nodes_values"].floats),
        modes=list(attrs["nodes_modes"].strings),
        true_ids=list(attrs["nodes_truenodeids"].ints),
        false_ids=list(attrs["nodes_falsenodeids"].ints),
        index=index,
        out=np.zeros(len(tree_ids), dtype=np.float64),
    )
    present = sorted(set(tree_ids))
    if present != list(range(len(trees))):
        raise WidenError(f"the graph has {len(present)} trees, the native model {len(trees)}")
    for tree, native in enumerate(trees):
        ctx.walk(tree, 0, native)
    return ctx.out


@dataclasses.dataclass
class _Tree:
    features: list[int]
    floats: list[float]
    modes: list[bytes]
    true_ids: list[int]
    false_ids: list[int]
    index: dict[tuple[int, int], int]
    out: np.ndarray

    def walk(self, tree: int, node: int, native: NativeSplit | None) -> None:
        stack = [(node, native)]
        while stack:
            node_id, split = stack.pop()
            i = self.index.get((tree, node_id))
            if i is None:
                raise WidenError(f"tree {tree} has no node {node_id}")
            if split is None:
                if self.modes[i] != b"LEAF":
                    raise WidenError(f"tree {tree} node {node_id}: a split where a leaf is")
                continue
            self._check(tree, node_id, i, split)
            self.out[i] = split.threshold
            stack.append((self.true_ids[i], split.left))
            stack.append((self.false_ids[i], split.right))

    def _check(self, tree: int, node_id: int, i: int, split: NativeSplit) -> None:
        # LightGBM writes thresholds like 1e300 (beyond FP32: the converter writes inf/max).
        with np.errstate(over="ignore"):
            near = np.float32(split.threshold)
        written = self.floats[i]
        if np.isfinite(near):
            close = abs(written - float(near)) <= abs(float(np.spacing(near))) * 2
        else:
            close = abs(written) >= float(np.finfo(np.float32).max)
        if self.modes[i] != b"BRANCH_LEQ" or self.features[i] != split.feature or not close:
            raise WidenError(
                f"tree {tree} node {node_id} ({self.modes[i].decode()} on feature "
                f"{self.features[i]} at {written!r}) does not match the native split "
                f"x[{split.feature}] <= {split.threshold!r}"
            )


def double_inputs(model: onnx.ModelProto) -> None:
    """Declare every FP32 graph input DOUBLE (the nodes reading them must take double)."""
    for value in model.graph.input:
        tensor = value.type.tensor_type
        if tensor.elem_type == TensorProto.FLOAT:
            tensor.elem_type = TensorProto.DOUBLE


def cast_inputs_to_float(model: onnx.ModelProto) -> None:
    """DOUBLE inputs, each cast to FP32 by the first node of the graph (in place)."""
    graph = model.graph
    casts = []
    for value in graph.input:
        tensor = value.type.tensor_type
        if tensor.elem_type != TensorProto.FLOAT:
            continue
        tensor.elem_type = TensorProto.DOUBLE
        inner = f"{value.name}__fp32"
        _rename_uses(graph, value.name, inner)
        casts.append(
            helper.make_node(
                "Cast", [value.name], [inner], name=f"{value.name}_to_fp32", to=TensorProto.FLOAT
            )
        )
    for position, cast in enumerate(casts):
        graph.node.insert(position, cast)


def float_trees_in_double_graph(model: onnx.ModelProto) -> None:
    """Make the TreeEnsemble nodes of a skl2onnx double graph runnable, in place.

    skl2onnx declares double scores for trees on double inputs; onnxruntime's kernels return
    FP32. Each float score gets a Cast back to double (or the graph output is declared FP32).

    Args:
        model: a graph converted with DOUBLE initial types.
    """
    graph = model.graph
    outputs = {o.name: o for o in graph.output}
    position = 0
    while position < len(graph.node):
        node = graph.node[position]
        if node.op_type not in TREE_OPS:
            position += 1
            continue
        first_score = 1 if node.op_type == "TreeEnsembleClassifier" else 0
        for k in range(first_score, len(node.output)):
            name = node.output[k]
            if name in outputs:
                outputs[name].type.tensor_type.elem_type = TensorProto.FLOAT
                continue
            node.output[k] = f"{name}__fp32"
            position += 1
            graph.node.insert(
                position,
                helper.make_node("Cast", [node.output[k]], [name], to=TensorProto.DOUBLE),
            )
        position += 1


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]


def _ml_opset_at_least(model: onnx.ModelProto, version: int) -> None:
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, version)
            return
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", version))
