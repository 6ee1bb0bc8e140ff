"""A spooler pass makes prediction blocks; unpacked, they are the records each request gives
on its own (the per-row path before blocks), byte for byte and in order."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from inference_server.prediction_log.capture import Captured
from inference_server.prediction_log.records import (
    BlockKeys,
    decode_line,
    pass_blocks,
    spool_data,
)
from modelyard.models import ModelSignature, TensorSpec
from modelyard.prediction_blocks import block_rows, plain_values, rows_of_values

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


def _signature(inputs: int, outputs: int, feature_names: tuple[str, ...]) -> ModelSignature:
    def specs(prefix: str, n: int) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(name=f"{prefix}{i}", datatype="FP32", shape=(-1,)) for i in range(n)
        )

    return ModelSignature(
        inputs=specs("in", inputs), outputs=specs("out", outputs), feature_names=feature_names
    )


def _captured(handle: Any, i: int, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> Captured:
    rows = inputs[0].shape[0] if inputs[0].ndim else 0
    return Captured(
        f"r{i}", 1.7e9 + i / 7, handle, "none", f"k{i}", i % 3 == 0, "http", 0.5 + i, inputs,
        rows, outputs,
    )  # fmt: skip


def row_values(
    names: Sequence[str],
    arrays: Sequence[np.ndarray],
    rows: int,
    feature_names: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The per-row ``{name: value}`` objects of a request's tensors, as the per-row path
    converted them before blocks."""
    return rows_of_values(
        names, [plain_values(a) for a in arrays], [a.shape for a in arrays], rows, feature_names
    )


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


_NUMERIC = ["?", "i1", "<i8", "<u2", "<f2", "<f4", "<f8", ">f8"]
_BYTES = st.binary(max_size=4)


@st.composite
def _tensor(draw: st.DrawFn, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bytes":
        values = draw(st.lists(_BYTES, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    return draw(
        hnp.arrays(
            np.dtype(dtype),
            shape,
            elements={"allow_nan": True, "allow_infinity": True}
            if np.dtype(dtype).kind == "f"
            else None,
        )
    )


@st.composite
def _requests(draw: st.DrawFn) -> list[Captured]:
    """Requests on a few versions sharing layouts (so they group), some that cannot group."""
    n_in = draw(st.integers(1, 2))
    n_out = draw(st.integers(1, 2))
    features = draw(st.integers(1, 3))
    named = n_in == 1 and draw(st.booleans())
    signature = _signature(n_in, n_out, tuple(f"f{i}" for i in range(features)) if named else ())
    versions: list[Any] = [_Version("m", v, signature) for v in (1, 2)]
    kinds = st.sampled_from([*_NUMERIC, "bytes"])
    row_shape = st.sampled_from([(), (1,), (features,), (2, 2)])
    layout = [(draw(kinds), draw(row_shape)) for _ in range(n_in + n_out)]
    if named:
        layout[0] = (draw(st.sampled_from(_NUMERIC)), (features,))
    entries: list[Captured] = []
    for i in range(draw(st.integers(1, 8))):
        rows = draw(st.integers(0, 3))
        tensors: list[np.ndarray] = []
        for dtype, shape in layout:
            change = draw(st.sampled_from(["same", "same", "same", "dtype", "no batch"]))
            if change == "dtype":
                dtype = draw(kinds)
            full = shape if change == "no batch" else (rows, *shape)
            tensors.append(draw(_tensor(dtype, full)))
        entries.append(
            Captured(
                f"r{i}",
                1.7e9 + draw(st.floats(0, 1e6)),
                draw(st.sampled_from(versions)),
                draw(st.sampled_from(["none", "canary", "shadow"])),
                draw(st.none() | st.text(max_size=3)),
                draw(st.booleans()),
                draw(st.sampled_from(["http", "grpc"])),
                draw(st.floats(0, 100)),
                tensors[:n_in],
                rows,
                tensors[n_in:],
            )
        )
    return entries


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(entries=_requests())
def test_property_17_blocks_unpack_to_one_record_per_row_as_answered(
    entries: list[Captured],
) -> None:
    # Any mix of versions, dtypes (bool, int8, uint16, float16, big-endian, BYTES), row
    # shapes, zero-row requests and tensors without the batch dimension.
    assert _unpacked(entries, 3) == [row for e in entries for row in _alone(e, 3)]


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
