"""Prediction blocks: the prediction log as the inference server hands it to the database.

Why blocks. Turning every answered row into a JSON record and a database row costs tens of
microseconds per row in Python; on a server whose core also serves the requests that is most of
issue 16's budget (logging on must keep >= 90 % of the throughput with it off). So the server
does only what must happen on its core: it keeps the tensors it already holds and writes each
pass of answered requests on one model version as **one block** (the arrays' raw bytes and the
per-request columns: ids, times, variants, keys, latencies), first to its spool (durability, as
before), then as one row of ``prediction_log_block``. Unpacking a block into one
``prediction_log`` row per scored row (the records every reader queries) is done by the reader
side — the control plane — off the serving core: :func:`unpack_blocks`, run by the control
plane's unpacker task and before each of its reads, so a read sees every shipped answer.

A block's rows are exactly the records the per-row path gave before blocks (byte-identical
``inputs``/``outputs`` JSON; the tests compare both): :func:`rows_of_values` is that per-row
conversion.

Contract:

- A block is a :class:`PredictionBlock`: requests ``r = 0..n-1`` (their columns), each with
  ``rows[r]`` scored rows (0 for a tensor without a batch dimension: one record, row 0); the
  tensors of all requests concatenated along the batch dimension (or, for a block of one
  request, the request's tensors as they were). Its ``key`` is unique per block and stays
  with it through spool replays: a second insert of a key is ignored.
- **Encoding.** :func:`encode_block` writes MessagePack (``msgspec.msgpack``; the tensors'
  bytes stay raw): this is a spool record's payload and ``prediction_log_block.payload``.
  The previous release wrote JSON (bytes in base64; about 1.4x the size and 6x the encoding
  time); :func:`decode_block` reads both, by the first byte: ``{`` is JSON, anything else
  MessagePack. So blocks shipped or spooled before an upgrade still unpack.
- :func:`unpack_blocks` moves up to ``max_blocks`` blocks, oldest first, into
  ``prediction_log`` (``ON CONFLICT DO NOTHING`` on the records' unique key, so unpacking a
  replayed block again inserts nothing) and deletes them, in the caller's transaction. On
  PostgreSQL the blocks are claimed ``FOR UPDATE SKIP LOCKED``, so replicas of the control
  plane unpack different blocks. Records of one worker get ids in the order it answered.

>>> import numpy as np
>>> block = PredictionBlock(key="k1", model="m", version=1, worker=0, input_names=["x"],
...     feature_names=["a", "b"], output_names=["y"], request_ids=["r1", "r2"],
...     times=[0.0, 0.5], variants=["none", "none"], routing_keys=[None, None],
...     shadows=[False, False], protocols=["http", "http"], latencies_ms=[1.0, 2.0],
...     rows=[1, 1], inputs=[tensor_column(np.array([[1, 2], [3, 4]], dtype=np.float32))],
...     outputs=[tensor_column(np.array([0, 1], dtype=np.int64))])
>>> [(r[0], r[1], r[10], r[11]) for r in block_rows(decode_block(encode_block(block)))]
[('r1', 0, '{"a":1.0,"b":2.0}', '{"y":0}'), ('r2', 0, '{"a":3.0,"b":4.0}', '{"y":1}')]
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.model_repository import MODEL_NAME_PATTERN
from modelyard.models import MAX_VERSION
from modelyard.prediction_log import COLUMNS, PROTOCOLS, VARIANTS, metadata, prediction_log

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()

PLAIN: Final = "plain"
"""The ``dtype`` of a :class:`TensorColumn` whose values are stored already converted
(BYTES / object tensors: text values), not as raw bytes."""


class TensorColumn(msgspec.Struct, array_like=True, frozen=True):
    """One tensor of a block: raw bytes of a numeric/bool array, or plain values.

    Attributes:
        dtype: numpy dtype string of ``data`` (e.g. ``<f4``), or :data:`PLAIN`.
        shape: the array's shape.
        data: the array's bytes in C order (empty for :data:`PLAIN`).
        values: the converted values (:func:`plain_values`) for :data:`PLAIN`, else None.
    """

    dtype: str
    shape: list[int]
    data: bytes = b""
    values: list[Any] | None = None


class PredictionBlock(msgspec.Struct, frozen=True):
    """Answered requests on one model version (see the module docstring).

    Per-request lists (``request_ids`` .. ``rows``) have one entry per request, in answer
    order; ``times`` are wall-clock seconds since the epoch (UTC).
    """

    key: str
    model: str
    version: int
    worker: int
    input_names: list[str]
    feature_names: list[str]
    output_names: list[str]
    request_ids: list[str]
    times: list[float]
    variants: list[str]
    routing_keys: list[str | None]
    shadows: list[bool]
    protocols: list[str]
    latencies_ms: list[float]
    rows: list[int]
    inputs: list[TensorColumn]
    outputs: list[TensorColumn]

    @property
    def records(self) -> int:
        """How many records (``prediction_log`` rows) the block unpacks into: a request's
        rows, or one for a request without a batch dimension (``rows`` 0)."""
        # NOTE: sum(max(r, 1) for r in rows) in C: ~5 ns a request instead of ~40 (a block
        # holds up to 4,096 requests, and the writer asks about three times per block)
        return sum(self.rows) + self.rows.count(0)


_json_block_decoder = msgspec.json.Decoder(PredictionBlock)
_block_decoder = msgspec.msgpack.Decoder(PredictionBlock)


def encode_block(block: PredictionBlock) -> bytes:
    """The block as MessagePack (a map of its fields; tensor bytes raw, ``bin``)."""
    return _msgpack_encoder.encode(block)


def decode_block(data: bytes) -> PredictionBlock:
    """A block encoded by :func:`encode_block`, or by the previous release's JSON encoding.

    The first byte tells them apart: ``{`` is a JSON document (the previous release's
    payloads and spool lines; msgspec writes no leading whitespace), anything else is
    MessagePack (a block is a map: its first byte is ``0x80``-``0x8f``, ``0xde`` or ``0xdf``,
    never ``{`` = ``0x7b``).

    Raises:
        msgspec.DecodeError: ``data`` is not an encoded block.
    """
    if data[:1] == b"{":
        return _json_block_decoder.decode(data)
    return _block_decoder.decode(data)


# -- values ------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def plain_values(array: np.ndarray) -> list[Any]:
    """``array`` as Python values (``tolist``; BYTES become text; a 0-d array a 1-list)."""
    if array.ndim == 0:
        values: list[Any] = [array.item()]
    else:
        values = array.tolist()
    if array.dtype.kind not in "OSU":
        return values
    return [_text(v) for v in values]


def tensor_column(array: np.ndarray) -> TensorColumn:
    """A block's column for ``array`` (raw bytes for numeric and bool dtypes)."""
    shape = list(array.shape)
    if array.dtype.kind in "biuf":
        return TensorColumn(array.dtype.str, shape, np.ascontiguousarray(array).tobytes())
    return TensorColumn(PLAIN, shape, values=plain_values(array))


def column_values(column: TensorColumn) -> list[Any]:
    """The values of a column, as :func:`plain_values` gives them for the original array."""
    if column.dtype == PLAIN:
        return column.values or []
    array = np.frombuffer(column.data, dtype=np.dtype(column.dtype)).reshape(column.shape)
    return plain_values(array)


def _cell(values: list[Any], row: int, rows: int) -> Any:
    """Row ``row``'s value of a tensor converted with ``tolist()``."""
    if len(values) != rows:  # no batch dimension: the whole tensor belongs to every row
        return values
    value = values[row]
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def rows_of_values(
    names: Sequence[str],
    columns: Sequence[list[Any]],
    shapes: Sequence[Sequence[int]],
    rows: int,
    feature_names: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The per-row ``{name: value}`` objects of tensors given as :func:`plain_values` and
    their shapes. Input values are keyed by feature name when the model takes one
    ``[-1, n_features]`` tensor with feature names, else by input name; a row's value is a
    scalar for a one-element row, else a list."""
    if feature_names and len(columns) == 1 and tuple(shapes[0]) == (rows, len(feature_names)):
        table = columns[0]
        return [dict(zip(feature_names, table[r], strict=True)) for r in range(rows)]
    return [
        {name: _cell(values, r, rows) for name, values in zip(names, columns, strict=True)}
        for r in range(rows)
    ]


def _length(column: sa.Column[Any]) -> int:
    """The length of a ``VARCHAR`` column of ``prediction_log`` (what its values may hold)."""
    assert isinstance(column.type, sa.String)
    assert column.type.length is not None
    return column.type.length


_ID_LENGTH: Final = _length(prediction_log.c.request_id)
_KEY_LENGTH: Final = _length(prediction_log.c.routing_key)
_SCALARS = (str, int, float, bool, type(None))


def _plain_value(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is what :func:`plain_values` gives: a scalar or nested lists of them."""
    if isinstance(value, _SCALARS):
        return True
    return isinstance(value, list) and depth < 32 and all(_plain_value(v, depth + 1) for v in value)


def _text_ok(values: Sequence[str | None], longest: int) -> bool:
    return all(v is None or (len(v) <= longest and "\x00" not in v) for v in values)


def check_block(block: PredictionBlock, size: int) -> None:
    """Refuse a block that is not what :class:`PredictionBlock` promises, before it is unpacked
    (``size``: its payload's bytes). The server only ships blocks it made; a damaged or forged
    row must neither fail every read after it nor turn into wrong records.

    What is checked: one entry per request in every per-request column; the version and worker
    within the ``INTEGER`` columns; the model a valid name; ids, keys, variants and protocols
    what the columns hold (SQLite stored what PostgreSQL refused); finite times and latencies;
    the rows: a single request of no batch dimension (``[0]``), or every request at least one
    row, with every tensor of a block of several requests, and at least one tensor of a
    single request's, holding exactly that many rows (a tensor of another length was given
    whole to every record); no more records than payload bytes; no negative dimension; plain
    (text) values only scalars or lists of them.

    Raises:
        ValueError: naming the first problem found.
    """
    _check_columns(block)
    _check_tensors(block, size)


def _check_lengths(block: PredictionBlock) -> None:
    """Every per-request column holds one entry per request id.

    Raises:
        ValueError: naming the lengths.
    """
    count = len(block.request_ids)
    columns = (block.times, block.variants, block.routing_keys, block.shadows, block.protocols,
               block.latencies_ms, block.rows)  # fmt: skip
    if any(len(c) != count for c in columns):
        lengths = sorted({len(c) for c in columns})
        raise ValueError(f"{count} request ids but per-request columns of {lengths}")


def _check_columns(block: PredictionBlock) -> None:
    """:func:`check_block`'s checks of the per-request columns and the block's own fields."""
    _check_lengths(block)
    if not 1 <= block.version <= MAX_VERSION or not 0 <= block.worker <= MAX_VERSION:
        raise ValueError(f"version {block.version} or worker {block.worker} out of range")
    if MODEL_NAME_PATTERN.fullmatch(block.model) is None:
        raise ValueError(f"model name {block.model[:200]!r} is not a valid name")
    if not (_text_ok(block.request_ids, _ID_LENGTH) and _text_ok(block.routing_keys, _KEY_LENGTH)):
        raise ValueError("a request id or routing key is too long or holds NUL")
    if not (set(block.variants) <= set(VARIANTS) and set(block.protocols) <= set(PROTOCOLS)):
        raise ValueError("an unknown variant or protocol")
    if not all(map(math.isfinite, block.times)) or not all(map(math.isfinite, block.latencies_ms)):
        raise ValueError("a time or latency that is not finite")


def _check_tensors(block: PredictionBlock, size: int) -> None:
    """:func:`check_block`'s checks of the rows and the tensors."""
    count = len(block.request_ids)
    tensors = [*block.inputs, *block.outputs]
    if not count:
        return  # NOTE: no requests, no records
    if any(d < 0 for c in tensors for d in c.shape):
        raise ValueError("a tensor with a negative dimension")
    if block.rows != [0]:
        records = sum(block.rows)
        if min(block.rows, default=0) < 1:
            raise ValueError(f"rows {block.rows[:8]}...: a request of several without rows")
        batched = [bool(c.shape) and c.shape[0] == records for c in tensors]
        if not any(batched) or (count > 1 and not all(batched)):
            raise ValueError(f"{records} rows, but tensors of shapes {[c.shape for c in tensors]}")
        if records > size:
            raise ValueError(f"{records} records in a payload of {size} bytes")
    for column in tensors:
        if column.dtype == PLAIN and not _plain_value(column.values or []):
            raise ValueError("a text tensor holding something other than values and lists")


def block_rows(block: PredictionBlock) -> list[tuple[Any, ...]]:
    """The ``prediction_log`` rows of a block: tuples in :data:`COLUMNS` order, ``inputs`` and
    ``outputs`` as JSON text, ``created_at`` aware UTC.

    Raises:
        ValueError: the block's per-request columns are not all one per request.
    """
    _check_lengths(block)
    total = block.records
    inputs = rows_of_values(
        block.input_names,
        [column_values(c) for c in block.inputs],
        [c.shape for c in block.inputs],
        total,
        block.feature_names,
    )
    outputs = rows_of_values(
        block.output_names,
        [column_values(c) for c in block.outputs],
        [c.shape for c in block.outputs],
        total,
    )
    encode = _encoder.encode
    result: list[tuple[Any, ...]] = []
    at = 0
    for r, request_id in enumerate(block.request_ids):
        created_at = dt.datetime.fromtimestamp(block.times[r], dt.UTC)
        for row in range(max(block.rows[r], 1)):
            result.append(
                (
                    request_id,
                    row,
                    created_at,
                    block.model,
                    block.version,
                    block.variants[r],
                    block.routing_keys[r],
                    block.shadows[r],
                    block.protocols[r],
                    block.latencies_ms[r],
                    encode(inputs[at + row]).decode(),
                    encode(outputs[at + row]).decode(),
                    block.worker,
                )
            )
        at += max(block.rows[r], 1)
    return result


# -- the table and the unpacker -------------------------------------------------------------

prediction_log_block = sa.Table(
    "prediction_log_block",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("worker", sa.Integer, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("key", name="uq_prediction_log_block_key"),
)
"""Shipped blocks not unpacked yet, as the ``modelyard_0003`` migration creates them:
``payload`` is :func:`encode_block`'s bytes (MessagePack; rows shipped by the previous release
hold JSON, which :func:`decode_block` reads too); ``created_at`` the first request's time;
``records`` how many records it unpacks into."""

BLOCK_COLUMNS: Final = tuple(c.name for c in prediction_log_block.columns if c.name != "id")
"""The columns a writer fills, in table order."""


def block_values(block: PredictionBlock, payload: bytes) -> tuple[Any, ...]:
    """The ``prediction_log_block`` row of ``block`` (:data:`BLOCK_COLUMNS` order)."""
    first = block.times[0] if block.times else 0.0
    return (
        block.key,
        block.model,
        block.version,
        block.worker,
        block.records,
        dt.datetime.fromtimestamp(first, dt.UTC),
        payload,
    )


class _JsonText(sa.types.TypeDecorator[str]):
    """A JSON column written with text that is JSON already (no second encoding)."""

    impl = sa.JSON
    cache_ok = True

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None


_records_as_text = sa.table(
    prediction_log.name,
    *(
        sa.column(c.name, _JsonText() if isinstance(c.type, sa.JSON) else c.type)
        for c in prediction_log.columns
        if c.name != "id"
    ),
)
"""``prediction_log`` for inserting :func:`block_rows` (``inputs``/``outputs`` as JSON text)."""


class Unpacked(NamedTuple):
    """What one :func:`unpack_blocks` call did."""

    blocks: int
    """Blocks taken off the table (unpacked or dropped; 0: none left, or all claimed by another
    replica)."""
    dropped: int
    """Of them, blocks deleted without records: undecodable, refused by :func:`check_block`, or
    refused by the database."""


async def unpack_blocks(conn: AsyncConnection, *, max_blocks: int = 100) -> Unpacked:
    """Unpack up to ``max_blocks`` of the oldest blocks into ``prediction_log`` and delete
    them, in ``conn``'s transaction (see the module docstring).

    A block that cannot be decoded (a damaged row: the server only ships blocks it encoded;
    whatever the decoder raises), that :func:`check_block` refuses, or whose records the
    database refuses (:func:`_insert_records`), is deleted with an error in the log naming its
    key, and counted (``dropped``), so it never holds up the ones after it.
    """
    query = (
        sa.select(
            prediction_log_block.c.id, prediction_log_block.c.key, prediction_log_block.c.payload
        )
        .order_by(prediction_log_block.c.id)
        .limit(max_blocks)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = (await conn.execute(query)).all()
    if not found:
        return Unpacked(0, 0)
    unpacked: list[tuple[str, list[tuple[Any, ...]]]] = []
    done: list[int] = []
    for block_id, key, payload in found:
        done.append(block_id)
        try:
            block = decode_block(bytes(payload))
        except Exception as exc:  # NOTE: not only DecodeError: invalid UTF-8 in a string
            # (UnicodeDecodeError), nesting past the recursion limit (RecursionError), a text
            # payload (TypeError) each held up every block after it, and every read
            log.error(
                "prediction log: block %s cannot be decoded (%s: %s); deleted",
                key,
                type(exc).__name__,
                exc,
            )
            continue
        try:
            check_block(block, len(payload))
            unpacked.append((key, block_rows(block)))
        except Exception as exc:  # NOTE: decodes but does not add up (columns of unequal
            # lengths): one such block must not hold up every read and feedback after it
            log.error(
                "prediction log: block %s cannot be unpacked (%s: %s); deleted",
                key,
                type(exc).__name__,
                exc,
            )
    refused = await _insert_records(conn, unpacked)
    await conn.execute(sa.delete(prediction_log_block).where(prediction_log_block.c.id.in_(done)))
    return Unpacked(len(done), len(done) - len(unpacked) + refused)


async def _insert_records(
    conn: AsyncConnection, unpacked: list[tuple[str, list[tuple[Any, ...]]]]
) -> int:
    """Insert the records of the unpacked blocks (key, rows) in one statement; if the database
    refuses it for its data (a value it will not store), block by block, each in its own
    savepoint, so a refused block is deleted with an error naming its key and the others go in.
    Any other failure (connection lost, database locked) is raised: the batch is retried.

    Returns:
        How many blocks the database refused.
    """
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
        _records_as_text
    ).on_conflict_do_nothing()

    async def put(rows: list[tuple[Any, ...]]) -> None:
        async with conn.begin_nested():
            await conn.execute(insert, [dict(zip(COLUMNS, row, strict=True)) for row in rows])

    everything = [row for _, rows in unpacked for row in rows]
    if not everything:
        return 0
    try:
        await put(everything)
        return 0
    except (sa.exc.DBAPIError, OverflowError) as exc:
        if not _refused(exc):
            raise
    refused = 0
    for key, rows in unpacked:  # NOTE: find the block the database refuses
        if not rows:
            continue
        try:
            await put(rows)
        except (sa.exc.DBAPIError, OverflowError) as exc:
            if not _refused(exc):
                raise
            refused += 1
            reason = getattr(exc, "orig", None) or exc  # NOTE: not the whole statement
            log.error("prediction log: block %s refused by the database (%s); deleted", key, reason)
    return refused


def _refused(exc: sa.exc.DBAPIError | OverflowError) -> bool:
    """Whether the database refused the data itself (a data exception or a constraint: SQLSTATE
    class 22 or 23; SQLite's driver refusing an integer beyond 64 bits), not the connection or
    a lock, which retrying may cure."""
    if isinstance(exc, OverflowError | sa.exc.DataError | sa.exc.IntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None)  # NOTE: asyncpg's errors, mapped to DBAPIError
    return isinstance(code, str) and code[:2] in ("22", "23")


async def pending_blocks(conn: AsyncConnection) -> tuple[int, int]:
    """Blocks waiting to be unpacked and the records they hold."""
    count, records = (
        await conn.execute(
            sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(prediction_log_block.c.records), 0)
            )
        )
    ).one()
    return int(count), int(records)


__all__ = [
    "BLOCK_COLUMNS",
    "PLAIN",
    "PredictionBlock",
    "TensorColumn",
    "Unpacked",
    "block_rows",
    "block_values",
    "check_block",
    "column_values",
    "decode_block",
    "encode_block",
    "pending_blocks",
    "plain_values",
    "prediction_log_block",
    "rows_of_values",
    "tensor_column",
    "unpack_blocks",
]
