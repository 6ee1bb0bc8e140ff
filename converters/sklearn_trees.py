"""The native trees of scikit-learn ensembles, as the converters' graph fixes need them.

skl2onnx numbers trees in ``estimators_`` order (row-major for GradientBoosting's
``[iteration, class]``) and HistGradientBoosting's by ``_predictors`` (iteration, class),
nodes by their index; these helpers read the native models in the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from converters.widen import NativeSplit, WidenError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import onnx

    from converters.thresholds import NativeSplit as FloatSplit


def hgb_trees(estimator: Any) -> Iterator[NativeSplit | None]:
    """The trees of a fitted HistGradientBoosting model in skl2onnx's order (private API)."""
    for iteration in estimator._predictors:
        for predictor in iteration:
            nodes = predictor.nodes

            def build(i: int, nodes: Any = nodes) -> NativeSplit | None:
                node = nodes[i]
                if node["is_leaf"]:
                    return None
                if node["is_categorical"]:
                    raise WidenError("a categorical split has no float64 threshold")
                return NativeSplit(
                    feature=int(node["feature_idx"]),
                    threshold=float(node["num_threshold"]),
                    left=build(int(node["left"])),
                    right=build(int(node["right"])),
                )

            yield build(0)


def hgb_splits(estimator: Any) -> Iterator[FloatSplit]:
    """Every numerical split of a fitted HistGradientBoosting model (private predictors)."""
    for iteration in estimator._predictors:
        for predictor in iteration:
            for node in predictor.nodes:
                if not node["is_leaf"] and not node["is_categorical"]:
                    yield int(node["feature_idx"]), float(node["num_threshold"])


def set_missing_directions(model: onnx.ModelProto, trees: list[Any]) -> None:
    """Send NaN where scikit-learn sends it: ``missing_go_to_left`` of each split.

    skl2onnx 1.20 writes ``nodes_missing_value_tracks_true = 0`` for every node of
    RandomForest/GradientBoosting, but scikit-learn >= 1.4 learns a side for missing values
    (or sends them to the larger child). skl2onnx numbers trees in ``estimators_`` order
    (row-major for GradientBoosting's ``[iteration, class]``) and nodes by their index, so
    the flags can be copied by (tree, node).

    Args:
        model: the converted graph (changed in place).
        trees: the fitted ``sklearn.tree._tree.Tree`` objects in skl2onnx's tree order.
    """
    for node in model.graph.node:
        if node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in node.attribute}
        flags = attrs["nodes_missing_value_tracks_true"]
        modes = attrs["nodes_modes"].strings
        values = list(flags.ints) or [0] * len(modes)
        for i, (tree, index) in enumerate(
            zip(attrs["nodes_treeids"].ints, attrs["nodes_nodeids"].ints, strict=True)
        ):
            missing_left = getattr(trees[tree], "missing_go_to_left", None)
            if modes[i] != b"LEAF" and missing_left is not None:
                values[i] = int(missing_left[index])
        del flags.ints[:]
        flags.ints.extend(values)


def fitted_trees(estimator: Any) -> list[Any]:
    """The fitted trees of a forest or gradient boosting, in skl2onnx's tree-id order."""
    return [tree.tree_ for tree in np.asarray(estimator.estimators_, dtype=object).ravel()]
