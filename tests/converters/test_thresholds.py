"""Exact FP32 tree decisions where nearest rounding of thresholds flips rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from converters import convert
from converters.thresholds import round_down, round_thresholds_down


def _adjacent_values(rows: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    """Features where half the values sit one FP32 step above another training value.

    A split between a value and its FP32 neighbour has a float64 midpoint that nearest
    rounding sends to one of the two, the worst case for ``x <= t``.
    """
    rng = np.random.default_rng(0)
    base = rng.integers(0, 50, size=(rows, 4)).astype(np.float32) / np.float32(10)
    bump = rng.random((rows, 4)) < 0.5
    features = np.where(bump, np.nextafter(base, np.float32(100)), base).astype(np.float32)
    labels = ((features[:, 0] > 2.5) ^ bump[:, 0]).astype(np.int64)
    return features, labels


@pytest.mark.parametrize(
    "model",
    [
        lgb.LGBMClassifier(n_estimators=50, min_child_samples=2, n_jobs=1, verbose=-1),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
    ],
    ids=["lightgbm", "hist_gradient_boosting"],
)
def test_splits_between_adjacent_fp32_values_agree(model: Any) -> None:
    features, labels = _adjacent_values()
    model.fit(features.astype(np.float64), labels)

    report = convert(model, features).fidelity

    assert report.label_agreement == 1.0
    assert report.max_abs_diff <= 1e-5
    assert report.within_tolerance


def test_thresholds_that_round_up_are_written_rounded_down() -> None:
    """onnxmltools rounds to nearest; on this data many thresholds round *up* (and flipped
    about half the rows before the fix: 52.7% label agreement)."""
    features, labels = _adjacent_values()
    model = lgb.LGBMClassifier(n_estimators=50, min_child_samples=2, n_jobs=1, verbose=-1)
    model.fit(features.astype(np.float64), labels)
    fixed = convert(model, features)
    graph = onnx.load_from_string(fixed.onnx)

    splits = [
        (int(n["split_feature"]), float(n["threshold"]))
        for n in _walk(model.booster_.dump_model()["tree_info"])
    ]
    assert round_thresholds_down(graph, splits) == 0  # idempotent on the fixed graph
    rounded_up = {t for _, t in splits if float(np.float32(t)) > t}
    assert rounded_up
    tree = next(n for n in graph.graph.node if n.op_type.startswith("TreeEnsemble"))
    written = set(next(a for a in tree.attribute if a.name == "nodes_values").floats)
    for threshold in rounded_up:
        assert round_down(threshold) in written


def test_round_down_is_the_largest_fp32_not_above() -> None:
    rng = np.random.default_rng(1)
    for value in rng.normal(0, 100, 1_000):
        down = np.float32(round_down(float(value)))
        assert float(down) <= value
        assert float(np.nextafter(down, np.float32(np.inf))) > value


def _walk(trees: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = [t["tree_structure"] for t in trees]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                yield node
            stack.extend((node["left_child"], node["right_child"]))
