"""A spooler pass makes prediction blocks; unpacked, they are the records each request gives
on its own (the per-row path before blocks), byte for byte and in order, whether its answer
was captured alone or as part of a session run with others."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

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


class _Answered(NamedTuple):
    """One answered request as a test makes it: its columns and its own arrays."""

    request_id: str
    variant: str
    routing_key: str | None
    protocol: str
    latency_ms: float
    inputs: list[np.ndarray]
    rows: int
    outputs: list[np.ndarray]


def _answered(
    i: int,
    inputs: list[np.ndarray],
    outputs: list[np.ndarray],
    *,
    variant: str = "none",
    key: str | None = None,
    protocol: str = "http",
    latency_ms: float = 0.5,
    rows: int = -1,
) -> _Answered:
    if rows < 0:
        rows = inputs[0].shape[0] if inputs[0].ndim else 0
    return _Answered(f"r{i}", variant, key, protocol, latency_ms, inputs, rows, outputs)


def _run(handle: Any, answers: Sequence[_Answered], wall_time: float = 1.7e9) -> Captured:
    """The entry a session run of ``answers`` hands over (their rows concatenated)."""
    if len(answers) == 1:
        inputs, outputs = answers[0].inputs, answers[0].outputs
    else:
        inputs = [np.concatenate(t) for t in zip(*(a.inputs for a in answers), strict=True)]
        outputs = [np.concatenate(t) for t in zip(*(a.outputs for a in answers), strict=True)]
    return Captured(
        handle, wall_time, [a.request_id for a in answers], [a.variant for a in answers],
        [a.routing_key for a in answers], [a.protocol for a in answers],
        [a.latency_ms for a in answers], [a.rows for a in answers], inputs, outputs,
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


def _alone(handle: Any, wall_time: float, answer: _Answered, worker: int) -> list[tuple[Any, ...]]:
    """The records of one request as the per-row path made them (the reference)."""
    signature = handle.signature
    rows = max(answer.rows, 1)
    inputs = row_values(
        [s.name for s in signature.inputs], answer.inputs, rows, signature.feature_names
    )
    outputs = row_values([s.name for s in signature.outputs], answer.outputs, rows)
    created_at = dt.datetime.fromtimestamp(wall_time, dt.UTC)
    return [
        (
            answer.request_id, row, created_at, handle.name, handle.version, answer.variant,
            answer.routing_key, answer.variant == "shadow", answer.protocol, answer.latency_ms,
            _encoder.encode(inputs[row]).decode(), _encoder.encode(outputs[row]).decode(), worker,
        )
        for row in range(rows)
    ]  # fmt: skip


def _each_alone(runs: list[tuple[Any, list[_Answered]]], worker: int) -> list[tuple[Any, ...]]:
    return [
        row
        for handle, answers in runs
        for answer in answers
        for row in _alone(handle, 1.7e9, answer, worker)
    ]


def _unpacked(entries: list[Captured], worker: int) -> list[tuple[Any, ...]]:
    """Blocks of a pass, through the spool's encoding and back, unpacked."""
    records = spool_data(pass_blocks(entries, worker, BlockKeys("t")))
    return [row for record in records for row in block_rows(decode_line(record).block)]  # type: ignore[arg-type]


def test_a_pass_gives_the_records_of_each_request_in_order() -> None:
    rng = np.random.default_rng(0)
    table = _Version("t", 1, _TABLE)
    other = _Version("t", 2, _TABLE)
    named = _Version("n", 1, _NAMED)

    def tabular(i: int, rows: int) -> _Answered:
        x = rng.standard_normal((rows, 3)).astype(np.float32)
        p = rng.random((rows, 2)).astype(np.float32)
        return _answered(i, [x], [rng.integers(0, 2, rows), p], key=f"k{i}", latency_ms=0.5 + i)

    runs: list[tuple[Any, list[_Answered]]] = [
        (table, [tabular(0, 1), tabular(1, 4)]),  # one run of two requests
        (table, [tabular(2, 1)]),
        (other, [tabular(3, 2)]),  # another version: a new block
        (named, [_answered(
            4, [rng.standard_normal((2, 2)), np.array([b"x", b"\xff"], dtype=object)],
            [rng.standard_normal(2)], variant="shadow",
        )]),
        (named, [_answered(5, [np.array(2.5), np.array([b"s"], dtype=object)], [np.ones(1)])]),
        (table, [tabular(6, 1), tabular(7, 3)]),
    ]  # fmt: skip
    entries = [_run(handle, answers) for handle, answers in runs]
    blocks = pass_blocks(entries, 3, BlockKeys("t"))
    assert [b.block.request_ids for b in blocks if b.block] == [
        ["r0", "r1", "r2"], ["r3"], ["r4"], ["r5"], ["r6", "r7"],
    ]  # fmt: skip
    assert len({b.block.key for b in blocks if b.block}) == len(blocks)
    assert _unpacked(entries, 3) == _each_alone(runs, 3)
    # The spooler's slicer may yield between runs: called once per run, same blocks.
    ticks: list[int] = []
    sliced = pass_blocks(entries, 3, BlockKeys("t"), lambda: ticks.append(1))
    assert len(ticks) == len(entries)
    assert [b.payload for b in sliced] == [b.payload for b in blocks]


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
def _runs(draw: st.DrawFn) -> list[tuple[Any, list[_Answered]]]:
    """Runs on a few versions sharing layouts (so they group), some that cannot group; a run
    of several requests only where its arrays are their rows (what the server's tap hands on
    whole, :func:`inference_server.answers.whole`)."""
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

    def answered(i: int, rows: int, vary: bool) -> _Answered:
        tensors: list[np.ndarray] = []
        for dtype, shape in layout:
            change = draw(st.sampled_from(["same", "same", "same", "dtype", "no batch"]))
            if not vary or change == "same":
                tensors.append(draw(_tensor(dtype, (rows, *shape))))
            elif change == "dtype":
                tensors.append(draw(_tensor(draw(kinds), (rows, *shape))))
            else:
                tensors.append(draw(_tensor(dtype, shape)))
        return _answered(
            i, tensors[:n_in], tensors[n_in:], rows=rows,
            variant=draw(st.sampled_from(["none", "canary", "shadow"])),
            key=draw(st.none() | st.text(max_size=3)),
            protocol=draw(st.sampled_from(["http", "grpc"])),
            latency_ms=draw(st.floats(0, 100)),
        )  # fmt: skip

    runs: list[tuple[Any, list[_Answered]]] = []
    i = 0
    for _ in range(draw(st.integers(1, 6))):
        handle = draw(st.sampled_from(versions))
        size = draw(st.integers(1, 3))
        if size == 1:  # alone: any rows (0 too), any dtype, tensors without the batch dimension
            runs.append((handle, [answered(i, draw(st.integers(0, 3)), vary=True)]))
        else:  # a run of several: the version's layout, at least one row each
            runs.append(
                (
                    handle,
                    [answered(i + k, draw(st.integers(1, 3)), vary=False) for k in range(size)],
                )
            )
        i += size
    return runs


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(runs=_runs())
def test_property_17_blocks_unpack_to_one_record_per_row_as_answered(
    runs: list[tuple[Any, list[_Answered]]],
) -> None:
    # Any mix of versions, runs of one or several requests, dtypes (bool, int8, uint16,
    # float16, big-endian, BYTES), row shapes, zero-row requests and tensors without the
    # batch dimension.
    entries = [_run(handle, answers) for handle, answers in runs]
    assert _unpacked(entries, 3) == _each_alone(runs, 3)


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
