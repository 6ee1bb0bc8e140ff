"""A spooler pass makes prediction blocks; unpacked, they are the records each request gives
on its own (the per-row path before blocks), byte for byte and in order."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import msgspec
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from inference_server.prediction_log.capture import Captured
from inference_server.prediction_log.records import (
    BlockKeys,
    decode_line,
    pass_blocks,
    spool_data,
)
from modelyard.models import ModelSignature, TensorSpec
from modelyard.prediction_blocks import block_rows, row_values

_encoder = msgspec.json.Encoder()


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
        f"r{i}", 1.7e9 + i / 7, handle, "none", f"k{i}", i % 3 == 0, "http", 0.5 + i, inputs,
        rows, outputs,
    )  # fmt: skip


def _alone(entry: Captured, worker: int) -> list[tuple[Any, ...]]:
    """The records of one request as the per-row path made them (the reference)."""
    signature = entry.handle.signature
    rows = max(entry.rows, 1)
    inputs = row_values(
        [s.name for s in signature.inputs], entry.inputs, rows, signature.feature_names
    )
    outputs = row_values([s.name for s in signature.outputs], entry.outputs, rows)
    created_at = dt.datetime.fromtimestamp(entry.wall_time, dt.UTC)
    return [
        (
            entry.request_id, row, created_at, entry.handle.name, entry.handle.version,
            entry.variant, entry.routing_key, entry.shadow, entry.protocol, entry.latency_ms,
            _encoder.encode(inputs[row]).decode(), _encoder.encode(outputs[row]).decode(), worker,
        )
        for row in range(rows)
    ]  # fmt: skip


def _unpacked(entries: list[Captured], worker: int) -> list[tuple[Any, ...]]:
    """Blocks of a pass, through the spool's encoding and back, unpacked."""
    data = spool_data(pass_blocks(entries, worker, BlockKeys("t")))
    return [row for line in data.splitlines() for row in block_rows(decode_line(line).block)]  # type: ignore[arg-type]


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
        tabular(other, 3, 2),  # another version: a new block
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
    blocks = pass_blocks(entries, 3, BlockKeys("t"))
    assert [b.block.request_ids for b in blocks if b.block] == [
        ["r0", "r1", "r2"], ["r3"], ["r4"], ["r5"], ["r6", "r7"],
    ]  # fmt: skip
    assert len({b.block.key for b in blocks if b.block}) == len(blocks)
    assert _unpacked(entries, 3) == [row for e in entries for row in _alone(e, 3)]


_FLOATS = st.floats(width=32) | st.sampled_from([float("nan"), float("inf"), -0.0])


@st.composite
def _requests(draw: st.DrawFn) -> list[Captured]:
    """Consecutive answered requests on two versions of a table model and a two-input model
    (float32/int64/bool/BYTES tensors, non-finite values, rows 0..5)."""
    table = _Version("t", 1, _TABLE)
    other = _Version("t", 2, _TABLE)
    named = _Version("n", 1, _NAMED)
    entries: list[Captured] = []
    for i in range(draw(st.integers(1, 12))):
        rows = draw(st.integers(1, 5))
        kind = draw(st.sampled_from(["table", "other", "named", "bool"]))
        cells = draw(st.lists(_FLOATS, min_size=rows * 3, max_size=rows * 3))
        x = np.array(cells, dtype=np.float32).reshape(rows, 3)
        if kind in ("table", "other"):
            outputs: list[np.ndarray] = [np.arange(rows, dtype=np.int64), x[:, :2].copy()]
            entries.append(_captured(table if kind == "table" else other, i, [x], outputs))
        elif kind == "bool":
            outputs = [np.asarray(x[:, 0] > 0), x[:, :2].astype(np.float64)]
            entries.append(_captured(table, i, [x], outputs))
        else:
            texts = draw(st.lists(st.binary(max_size=4), min_size=rows, max_size=rows))
            strings = np.array(texts, dtype=object)
            entries.append(_captured(named, i, [x[:, :2].astype(np.float64), strings], [x[:, 0]]))
    return entries


@given(entries=_requests())
def test_property_17_blocks_unpack_to_one_record_per_row_as_answered(
    entries: list[Captured],
) -> None:
    assert _unpacked(entries, 1) == [row for e in entries for row in _alone(e, 1)]


def test_old_format_spool_lines_still_decode() -> None:
    line = (
        b'["r1",0,"2026-12-04T10:00:00Z","m",1,"none",null,false,"http",1.5,{"a":1.0},{"y":0},0]\n'
    )
    shipped = decode_line(line)
    assert shipped.block is None
    assert shipped.record is not None
    assert shipped.record.request_id == "r1"
    assert bytes(shipped.record.inputs) == b'{"a":1.0}'
    assert shipped.records == 1
