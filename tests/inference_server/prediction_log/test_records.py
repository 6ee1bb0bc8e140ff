"""A spooler pass converts consecutive requests column-wise; the records are those the
requests give one by one, in order."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from inference_server.prediction_log.capture import Captured
from inference_server.prediction_log.records import encode_lines, pass_records, records_of
from modelyard.models import ModelSignature, TensorSpec


@dataclasses.dataclass(frozen=True, eq=False)
class _Version:
    """The attributes of a LoadedVersion the records read."""

    name: str
    version: int
    signature: ModelSignature


_TABLE = ModelSignature(
    inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 3)),),
    outputs=(
        TensorSpec(name="label", datatype="INT64", shape=(-1,)),
        TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),
    ),
    feature_names=("a", "b", "c"),
)
_NAMED = ModelSignature(
    inputs=(
        TensorSpec(name="x", datatype="FP64", shape=(-1, 2)),
        TensorSpec(name="s", datatype="BYTES", shape=(-1,)),
    ),
    outputs=(TensorSpec(name="y", datatype="FP64", shape=(-1,)),),
)


def _captured(handle: Any, i: int, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> Captured:
    rows = inputs[0].shape[0] if inputs[0].ndim else 0
    return Captured(
        f"r{i}", 1.7e9 + i, handle, "none", None, False, "http", 0.5, inputs, rows, outputs
    )


def test_a_pass_gives_the_records_of_each_request_in_order() -> None:
    rng = np.random.default_rng(0)
    table = _Version("t", 1, _TABLE)
    other = _Version("t", 2, _TABLE)
    named = _Version("n", 1, _NAMED)

    def tabular(handle: _Version, i: int, rows: int) -> Captured:
        x = rng.standard_normal((rows, 3)).astype(np.float32)
        p = rng.random((rows, 2)).astype(np.float32)
        return _captured(handle, i, [x], [rng.integers(0, 2, rows), p])

    entries = [
        tabular(table, 0, 1),
        tabular(table, 1, 4),
        tabular(table, 2, 1),
        tabular(other, 3, 2),  # another version: a new group
        _captured(
            named,
            4,
            [rng.standard_normal((2, 2)), np.array([b"x", b"\xff"], dtype=object)],
            [rng.standard_normal(2)],
        ),
        _captured(named, 5, [np.array(2.5), np.array([b"s"], dtype=object)], [np.ones(1)]),
        tabular(table, 6, 1),
        tabular(table, 7, 3),
    ]
    one_by_one = [record for entry in entries for record in records_of(entry, 3)]
    together = pass_records(entries, 3)
    assert [(r.request_id, r.row_index) for r in together] == [
        (r.request_id, r.row_index) for r in one_by_one
    ]
    assert encode_lines(together) == encode_lines(one_by_one)
