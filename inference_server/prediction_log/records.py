"""Captured requests -> one record per row (-> spool lines), and spool lines -> records.

Runs on the spooler / shipper threads, never on the event loop. A spool line is the JSON
array of one record's columns in :data:`modelyard.prediction_log.COLUMNS` order, ending in a
newline; inputs and outputs stay raw JSON text until they reach the database (json columns).

The spooler builds the :class:`SpooledRecord` objects of a whole pass (:func:`pass_records`)
and encodes them in one call (:func:`encode_lines`); the shipper either receives those very
objects from memory or decodes them back from the spool (:data:`spool_decoder`): both give
the same records, so the two paths are interchangeable. A pass converts the tensors of
consecutive requests on one version column-wise: their arrays are concatenated and turned
into Python values once (the records are those :func:`records_of` gives request by request).

Input values are keyed by feature name when the model takes one ``[-1, n_features]`` tensor
with feature names, else by input name; output values by output name. A row's value is a
scalar for a one-element row, else a list; BYTES become text (UTF-8, replacement characters
for invalid bytes); NaN and infinities become ``null``.

>>> import numpy as np
>>> row_values(["a", "b"], [np.array([[1.5, 2.0], [3.0, 4.0]], dtype=np.float32)], 2, ("x", "y"))
[{'x': 1.5, 'y': 2.0}, {'x': 3.0, 'y': 4.0}]
>>> row_values(["label", "p"], [np.array([1, 0]), np.array([[0.1, 0.9], [0.8, 0.2]])], 2)
[{'label': 1, 'p': [0.1, 0.9]}, {'label': 0, 'p': [0.8, 0.2]}]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

if TYPE_CHECKING:
    from inference_server.prediction_log.capture import Captured

_encoder = msgspec.json.Encoder()


class SpooledRecord(msgspec.Struct, array_like=True, frozen=True):
    """A spool line decoded for shipping (inputs/outputs kept as raw JSON)."""

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


spool_decoder = msgspec.json.Decoder(SpooledRecord)


def _plain(array: np.ndarray) -> list[Any]:
    values: list[Any] = array.tolist()
    if array.dtype.kind not in "OSU":
        return values
    return [_text(v) for v in values]


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _cell(values: list[Any], row: int, rows: int) -> Any:
    """Row ``row``'s value of a tensor converted with ``tolist()``."""
    if len(values) != rows:  # no batch dimension: the whole tensor belongs to every row
        return values
    value = values[row]
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def row_values(
    names: Sequence[str],
    arrays: Sequence[np.ndarray],
    rows: int,
    feature_names: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The per-row ``{name: value}`` objects of some tensors (see the module docstring)."""
    if (
        feature_names
        and len(arrays) == 1
        and arrays[0].ndim == 2
        and arrays[0].shape == (rows, len(feature_names))
    ):
        table = _plain(arrays[0])
        return [dict(zip(feature_names, table[r], strict=True)) for r in range(rows)]
    columns = [_plain(a) if a.ndim else [a.item()] for a in arrays]
    return [
        {name: _cell(values, r, rows) for name, values in zip(names, columns, strict=True)}
        for r in range(rows)
    ]


def records_of(entry: Captured, worker: int) -> list[SpooledRecord]:
    """The records (one per row) of an answered request; inputs/outputs encoded once here."""
    handle = entry.handle
    signature = handle.signature
    rows = max(entry.rows, 1)
    inputs = row_values(
        [s.name for s in signature.inputs], entry.inputs, rows, signature.feature_names
    )
    outputs = row_values([s.name for s in signature.outputs], entry.outputs, rows)
    return _entry_records(entry, 0, inputs, outputs, worker)


def _entry_records(
    entry: Captured,
    at: int,
    input_rows: list[dict[str, Any]],
    output_rows: list[dict[str, Any]],
    worker: int,
) -> list[SpooledRecord]:
    """The records of ``entry``, whose rows start at ``at`` in ``input_rows``/``output_rows``."""
    handle = entry.handle
    encode = _encoder.encode
    created_at = dt.datetime.fromtimestamp(entry.wall_time, dt.UTC)
    return [
        SpooledRecord(
            entry.request_id,
            row,
            created_at,
            handle.name,
            handle.version,
            entry.variant,
            entry.routing_key,
            entry.shadow,
            entry.protocol,
            entry.latency_ms,
            msgspec.Raw(encode(input_rows[at + row])),
            msgspec.Raw(encode(output_rows[at + row])),
            worker,
        )
        for row in range(max(entry.rows, 1))
    ]


def _layout(entry: Captured) -> tuple[object, ...] | None:
    """What must match for requests to be converted together (None: convert alone): the
    version, and each tensor's dtype and row shape, every tensor having the batch dimension."""
    rows = entry.rows
    layout: list[object] = [entry.handle]
    for array in (*entry.inputs, *entry.outputs):
        if rows < 1 or array.ndim == 0 or array.shape[0] != rows:
            return None
        layout.append((array.dtype, array.shape[1:]))
    return tuple(layout)


def _group_records(group: list[Captured], worker: int) -> list[SpooledRecord]:
    """The records of requests with one layout (:func:`_layout`), converted column-wise."""
    if len(group) == 1:
        return records_of(group[0], worker)
    first = group[0]
    handle = first.handle
    signature = handle.signature
    total = sum(entry.rows for entry in group)
    inputs = [np.concatenate(arrays) for arrays in zip(*(e.inputs for e in group), strict=True)]
    outputs = [np.concatenate(arrays) for arrays in zip(*(e.outputs for e in group), strict=True)]
    input_rows = row_values(
        [s.name for s in signature.inputs], inputs, total, signature.feature_names
    )
    output_rows = row_values([s.name for s in signature.outputs], outputs, total)
    records: list[SpooledRecord] = []
    at = 0
    for entry in group:
        records += _entry_records(entry, at, input_rows, output_rows, worker)
        at += entry.rows
    return records


def pass_records(entries: Sequence[Captured], worker: int) -> list[SpooledRecord]:
    """The records of answered requests in order: those :func:`records_of` gives one by one,
    with the tensors of consecutive requests on one version converted together."""
    records: list[SpooledRecord] = []
    group: list[Captured] = []
    current: tuple[object, ...] | None = None
    for entry in entries:
        layout = _layout(entry)
        if group and (layout is None or layout != current):
            records += _group_records(group, worker)
            group = []
        if layout is None:
            records += records_of(entry, worker)
        else:
            group.append(entry)
            current = layout
    if group:
        records += _group_records(group, worker)
    return records


def encode_lines(records: list[SpooledRecord]) -> bytes:
    """The spool lines of ``records`` (one JSON array per line, each ending in a newline)."""
    return _encoder.encode_lines(records)


def spool_lines(entry: Captured, worker: int) -> list[bytes]:
    """One JSON line per row of an answered request (:func:`records_of`, encoded)."""
    return [_encoder.encode(record) + b"\n" for record in records_of(entry, worker)]


__all__ = [
    "SpooledRecord",
    "encode_lines",
    "pass_records",
    "records_of",
    "row_values",
    "spool_decoder",
    "spool_lines",
]
