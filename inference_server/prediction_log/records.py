"""Captured runs -> prediction blocks (-> spool records), and spool records -> what to ship.

Runs on the spooler / shipper threads, never on the event loop. The spooler turns a pass of
answered session runs (:class:`~inference_server.prediction_log.capture.Captured`: a run's
requests with its whole arrays) into :class:`~modelyard.prediction_blocks.PredictionBlock`s
(:func:`pass_blocks`): consecutive runs on one version whose tensors have the same dtypes and
row shapes (each with the batch dimension) share one block, their tensors concatenated (one
concatenation per run, not per request) and kept as raw bytes; any other run is a block of
its own, its tensors as they were. No per-row work happens here: the records (one
``prediction_log`` row per scored row) are made when the control plane unpacks the blocks
(:func:`modelyard.prediction_blocks.block_rows`).

A spool record (the payload of one frame: :mod:`~inference_server.prediction_log.spool`) is a
block in MessagePack (:func:`~modelyard.prediction_blocks.encode_block`). Segments of the
previous releases hold JSON lines instead: a block (a JSON object, starting with ``{``) or,
before blocks, one record (a JSON array of :data:`modelyard.prediction_log.COLUMNS`, starting
with ``[``, decoded into a :class:`SpooledRecord` and shipped to ``prediction_log`` as it was).
:func:`decode_line` reads all three, so a spool left by a previous release ships after an
upgrade.

>>> import numpy as np
>>> from types import SimpleNamespace
>>> from inference_server.core.types import InferRequest
>>> from inference_server.prediction_log.capture import captured
>>> from modelyard.models import ModelSignature, TensorSpec
>>> signature = ModelSignature(inputs=(TensorSpec(name="x", datatype="FP32", shape=(-1, 2)),),
...     outputs=(TensorSpec(name="y", datatype="INT64", shape=(-1,)),), feature_names=("a", "b"))
>>> handle = SimpleNamespace(name="m", version=3, signature=signature)
>>> def answered(rows):  # one run: a request per entry of rows, rows[i] rows each
...     requests = [SimpleNamespace(request=InferRequest(model_name="m", inputs=[], id=f"r{i}"),
...                                 variant="none", start=0.0) for i in range(len(rows))]
...     total = sum(rows)
...     return captured(handle, requests, rows, [np.zeros((total, 2), np.float32)],
...                     [np.zeros(total, np.int64)])
>>> [(b.block.request_ids, b.block.records) for b in pass_blocks([answered([1, 2]), answered([1])],
...     worker=0, keys=BlockKeys("k"))]
[(['r0', 'r1', 'r0'], 4)]
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import msgspec
import numpy as np

from inference_server.prediction_log.capture import SHADOW
from modelyard.prediction_blocks import (
    PredictionBlock,
    decode_block,
    encode_block,
    tensor_column,
)

if TYPE_CHECKING:
    from inference_server.prediction_log.capture import Captured

MAX_BLOCK_REQUESTS = 4096
"""A block takes no further run that would take it past this many requests (a single larger
run is a block of its own)."""

MAX_BLOCK_BYTES = 512 * 1024
"""A block takes no further request once its tensors hold this many bytes (so a spool line
stays well under the spool's read chunk; a single larger request is a block of its own)."""


class SpooledRecord(msgspec.Struct, array_like=True, frozen=True):
    """A spool line of the per-row format written before blocks (inputs/outputs raw JSON)."""

    request_id: str
    row_index: int
    created_at: dt.datetime
    model: str
    version: int
    variant: str
    routing_key: str | None
    shadow: bool
    protocol: str
    latency_ms: float
    inputs: msgspec.Raw
    outputs: msgspec.Raw
    worker: int


_record_decoder = msgspec.json.Decoder(SpooledRecord)


class Shipped(NamedTuple):
    """One spool record, ready to ship: a block with its encoded bytes (``payload``: what
    ``prediction_log_block.payload`` gets), or an old per-row record."""

    block: PredictionBlock | None
    payload: bytes
    record: SpooledRecord | None

    @property
    def records(self) -> int:
        """How many ``prediction_log`` rows the spool record stands for."""
        return self.block.records if self.block is not None else 1

    @property
    def requests(self) -> int:
        """How many answered requests the spool record holds."""
        return len(self.block.request_ids) if self.block is not None else 1


class BlockKeys:
    """Unique block keys: a random prefix per writer (per start) and a counter.

    Args:
        prefix: the prefix (default: 16 random hex digits).
    """

    def __init__(self, prefix: str | None = None) -> None:
        self._prefix = prefix if prefix is not None else os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        """A key no block of this writer had."""
        return f"{self._prefix}-{next(self._counter):x}"


def _layout(entry: Captured) -> tuple[object, ...] | None:
    """What must match for runs to share a block (None: a block of its own): the version,
    and each tensor's dtype and row shape, every tensor having the batch dimension."""
    rows = entry.rows[0] if len(entry.rows) == 1 else sum(entry.rows)
    if rows < 1:
        return None
    layout: list[object] = [entry.handle]
    for arrays in (entry.inputs, entry.outputs):
        for array in arrays:
            shape = array.shape
            if not shape or shape[0] != rows:
                return None
            layout.append(array.dtype)
            layout.append(shape[1:])
    return tuple(layout)


def _row_bytes(entry: Captured) -> int:
    """Bytes of one row of ``entry``'s tensors (all have the batch dimension)."""
    total = sum(a.nbytes for a in entry.inputs) + sum(a.nbytes for a in entry.outputs)
    return max(total // sum(entry.rows), 1)


def _block(group: Sequence[Captured], worker: int, key: str) -> Shipped:
    """The block of ``group`` (one run, or runs with one layout)."""
    handle = group[0].handle
    signature = handle.signature
    if len(group) == 1:
        inputs, outputs = group[0].inputs, group[0].outputs
    else:
        inputs = [np.concatenate(a) for a in zip(*(e.inputs for e in group), strict=True)]
        outputs = [np.concatenate(a) for a in zip(*(e.outputs for e in group), strict=True)]
    ids: list[str] = []
    times: list[float] = []
    variants: list[str] = []
    keys: list[str | None] = []
    protocols: list[str] = []
    latencies: list[float] = []
    rows: list[int] = []
    for entry in group:
        ids += entry.request_ids
        variants += entry.variants
        keys += entry.routing_keys
        protocols += entry.protocols
        latencies += entry.latencies_ms
        times += [entry.wall_time] * len(entry.rows)
        rows += entry.rows
    block = PredictionBlock(
        key=key,
        model=handle.name,
        version=handle.version,
        worker=worker,
        input_names=[s.name for s in signature.inputs],
        feature_names=list(signature.feature_names),
        output_names=[s.name for s in signature.outputs],
        request_ids=ids,
        times=times,
        variants=variants,
        routing_keys=keys,
        shadows=[variant == SHADOW for variant in variants],
        protocols=protocols,
        latencies_ms=latencies,
        rows=rows,
        inputs=[tensor_column(a) for a in inputs],
        outputs=[tensor_column(a) for a in outputs],
    )
    return Shipped(block, encode_block(block), None)


def pass_blocks(
    entries: Sequence[Captured],
    worker: int,
    keys: BlockKeys,
    tick: Callable[[], object] | None = None,
) -> list[Shipped]:
    """The blocks of answered runs, in answer order (see the module docstring); ``tick`` is
    called before each run (the spooler's :meth:`~inference_server.background.Slicer.tick`:
    it may let go of the GIL there)."""
    blocks: list[Shipped] = []
    group: list[Captured] = []
    current: tuple[object, ...] | None = None
    rows = room = requests = 0
    for entry in entries:
        if tick is not None:
            tick()
        layout = _layout(entry)
        if group and (
            layout is None
            or layout != current
            or requests + len(entry.rows) > MAX_BLOCK_REQUESTS
            or rows >= room
        ):
            blocks.append(_block(group, worker, keys.next()))
            group = []
        if layout is None:
            blocks.append(_block([entry], worker, keys.next()))
            continue
        if not group:
            rows, room, requests = 0, MAX_BLOCK_BYTES // _row_bytes(entry), 0
            current = layout
        group.append(entry)
        rows += sum(entry.rows)
        requests += len(entry.rows)
    if group:
        blocks.append(_block(group, worker, keys.next()))
    return blocks


def spool_data(shipped: Sequence[Shipped]) -> list[bytes]:
    """The spool records of ``shipped`` blocks: their payloads, not copied
    (:meth:`~inference_server.prediction_log.spool.Spool.append` frames them)."""
    return [s.payload for s in shipped]


def decode_line(line: bytes) -> Shipped:
    """A spool record: a MessagePack block (a frame's payload, taken as it is), or a JSON line
    of a previous release's segment (with or without its newline): a block ``{...}`` or a
    per-row record ``[...]``.

    Raises:
        msgspec.DecodeError: the record is none of these.
    """
    first = line[:1]
    if first == b"{":
        payload = line.rstrip(b"\n")
        return Shipped(decode_block(payload), payload, None)
    if first == b"[":
        payload = line.rstrip(b"\n")
        return Shipped(None, payload, _record_decoder.decode(payload))
    return Shipped(decode_block(line), line, None)


__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_BLOCK_REQUESTS",
    "BlockKeys",
    "Shipped",
    "SpooledRecord",
    "decode_line",
    "pass_blocks",
    "spool_data",
]
