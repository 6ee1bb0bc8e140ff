"""The prediction log's shared vocabulary: one :class:`PredictionRecord` per answered row.

The inference server writes records (``inference_server.prediction_log``); the control plane
reads them (``control_plane.predictions``) for A/B metrics, performance tracking and
retraining. Both planes meet here and in the database, never in each other's code.

One record is one row of one answered request on one model version:

- ``request_id`` is the Open Inference Protocol ``id`` the client sent, else one the server
  generated and returned in the answer; ``row_index`` is the row's position in the request
  (0 for a single row). Feedback (``POST /v1/feedback``) joins on ``(request_id, row_index)``.
- ``variant`` is always set: ``control`` / ``treatment`` for an A/B arm, ``shadow`` for a
  shadow copy (``shadow`` is then true and the answer was never returned), ``none`` for a
  request that was not routed (it named a version, or the model has no routes).
- The key ``(request_id, row_index, model, version, shadow)`` is unique: replaying the
  writer's spool after a crash inserts nothing twice (``ON CONFLICT DO NOTHING``).

>>> record = PredictionRecord(request_id="r1", row_index=0, created_at=EPOCH, model="churn",
...     version=2, variant="treatment", protocol="http", latency_ms=1.5,
...     inputs={"age": 42}, outputs={"label": 1})
>>> record_values(record)["variant"], record_values(record)["shadow"]
('treatment', False)
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from modelyard.models import Scalar

VARIANT_NONE: Final = "none"
"""The variant of a request that no A/B route decided (it named a version, or no routes)."""

VARIANTS: Final = ("control", "treatment", "shadow", VARIANT_NONE)
"""Every value ``variant`` takes."""

PROTOCOLS: Final = ("grpc", "http")

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

UNIQUE_KEY: Final = ("request_id", "row_index", "model", "version", "shadow")
"""The columns that identify a record; a second insert of the same key is ignored."""

Value = Scalar | list[Any]
"""A logged input or output value: a scalar, or a list for a multi-valued tensor row."""


class PredictionRecord(msgspec.Struct, kw_only=True, frozen=True):
    """The durable record of one scored row.

    Attributes:
        request_id: the client's OIP ``id``, else the id the server generated and returned.
        row_index: position of the row in its request (0-based).
        created_at: when the answer was computed (UTC).
        model: the model that answered.
        version: the version that computed the answer.
        variant: ``control``, ``treatment``, ``shadow`` or ``none`` (:data:`VARIANTS`).
        routing_key: the request's ``routing_key`` parameter, if any.
        shadow: a shadow copy, whose answer was never returned.
        protocol: ``grpc`` or ``http``.
        latency_ms: server-side latency of the whole request, in milliseconds.
        inputs: the row's input values by feature name (by input name when the model has no
            feature names).
        outputs: the row's output values by output name.
        worker: index of the server worker process that answered.
        id: sequence number, assigned by the database.
    """

    request_id: str
    row_index: int
    created_at: dt.datetime
    model: str
    version: int
    variant: str
    routing_key: str | None = None
    shadow: bool = False
    protocol: str
    latency_ms: float
    inputs: dict[str, Value]
    outputs: dict[str, Value]
    worker: int = 0
    id: int | None = None


metadata = sa.MetaData()

prediction_log = sa.Table(
    "prediction_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("row_index", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("variant", sa.String(16), nullable=False),
    sa.Column("routing_key", sa.String(256), nullable=True),
    sa.Column("shadow", sa.Boolean, nullable=False),
    sa.Column("protocol", sa.String(8), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=False),
    sa.Column("outputs", sa.JSON, nullable=False),
    sa.Column("worker", sa.Integer, nullable=False),
    sa.UniqueConstraint(*UNIQUE_KEY, name="uq_prediction_log_key"),
    sa.Index("ix_prediction_log_model_time", "model", "version", "created_at"),
    sa.Index("ix_prediction_log_created_at", "created_at"),
)
"""The records, as the ``modelyard_0002`` migration creates them."""

COLUMNS: Final = tuple(c.name for c in prediction_log.columns if c.name != "id")
"""The columns a writer fills, in table order (``id`` is the database's)."""


def record_values(record: PredictionRecord) -> dict[str, Any]:
    """The column values of ``record`` (without ``id``), for an insert."""
    values = msgspec.structs.asdict(record)
    del values["id"]
    return values


def record_from_row(row: dict[str, Any]) -> PredictionRecord:
    """A record read back from the table (SQLite returns naive UTC times; made aware)."""
    values = {str(key): value for key, value in row.items()}
    created_at = values["created_at"]
    if isinstance(created_at, dt.datetime) and created_at.tzinfo is None:
        values["created_at"] = created_at.replace(tzinfo=dt.UTC)
    values["shadow"] = bool(values["shadow"])
    return msgspec.convert(values, PredictionRecord)


__all__ = [
    "COLUMNS",
    "EPOCH",
    "PROTOCOLS",
    "UNIQUE_KEY",
    "VARIANTS",
    "VARIANT_NONE",
    "PredictionRecord",
    "Value",
    "metadata",
    "prediction_log",
    "record_from_row",
    "record_values",
]
