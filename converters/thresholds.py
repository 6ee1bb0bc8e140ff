"""Exact FP32 tree decisions: round ``<=`` thresholds down, not to nearest.

Native LightGBM and HistGradientBoosting compare ``x <= t`` in float64. Converters write ``t``
rounded to the *nearest* FP32; when that rounds up, an FP32 input equal to the rounded value
goes left in ONNX and right natively (common when thresholds are data values, as in
HistGradientBoosting's quantile bins). For every FP32 ``x``, ``x <= t`` holds exactly when
``x <= round_down(t)``, so :func:`round_thresholds_down` rewrites each ``BRANCH_LEQ`` value of
the graph's TreeEnsemble nodes to the FP32 just below the native threshold.

Graph nodes are matched to native thresholds by (feature, nearest FP32 value), independent
of the converter's node order; a value shared by native thresholds whose round-downs differ
is left alone (and the fidelity check will show it).

>>> down = round_down(0.1)
>>> bool(np.float64(down) <= 0.1 < np.float64(np.nextafter(down, np.float32(1))))
True
>>> round_down(0.5) == 0.5
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable

    import onnx

NativeSplit = tuple[int, float]
"""(feature index, float64 threshold) of one native ``x <= t`` split."""


def round_down(value: float) -> float:
    """The largest FP32 not above ``value``.

    Args:
        value: a float64 threshold.

    Returns:
        That FP32, as a Python float.
    """
    nearest = np.float32(value)
    if float(nearest) > value:
        nearest = np.nextafter(nearest, np.float32(-np.inf))
    return float(nearest)


def round_thresholds_down(model: onnx.ModelProto, splits: Iterable[NativeSplit]) -> int:
    """Rewrite the ``BRANCH_LEQ`` thresholds of every TreeEnsemble node in place.

    Args:
        model: a converted graph.
        splits: every native ``x <= t`` split of the model.

    Returns:
        The number of thresholds changed.
    """
    lookup: dict[NativeSplit, set[float]] = {}
    for feature, threshold in splits:
        lookup.setdefault((feature, float(np.float32(threshold))), set()).add(round_down(threshold))
    changed = 0
    for node in model.graph.node:
        if node.op_type not in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            continue
        attrs = {a.name: a for a in node.attribute}
        values = list(attrs["nodes_values"].floats)
        modes = attrs["nodes_modes"].strings
        for i, feature in enumerate(attrs["nodes_featureids"].ints):
            candidates = lookup.get((feature, values[i]), set())
            if modes[i] == b"BRANCH_LEQ" and len(candidates) == 1:
                down = next(iter(candidates))
                changed += down != values[i]
                values[i] = down
        del attrs["nodes_values"].floats[:]
        attrs["nodes_values"].floats.extend(values)
    return changed
