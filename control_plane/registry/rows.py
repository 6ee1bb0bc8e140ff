"""Mapping between registry rows and msgspec structs.

Structured columns (signature, lineage, card, tags) hold msgspec JSON; the lineage keys that are
queried (run id, dataset, code version) are copied into columns of their own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa

from control_plane.registry.tables import model_cards, model_versions
from modelyard.enums import CardStatus, ModelStage
from modelyard.models import ModelCard, ModelLineage, ModelSignature, RegisteredModel

_ENCODER = msgspec.json.Encoder()


def encode(value: Any) -> str:
    """JSON text of a struct or plain value (the stored form of structured columns)."""
    return _ENCODER.encode(value).decode()


def utc(value: Any) -> Any:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


VERSION_QUERY = sa.select(
    model_versions,
    model_cards.c.card,
    model_cards.c.status.label("card_status"),
).join(
    model_cards,
    sa.and_(
        model_cards.c.name == model_versions.c.name,
        model_cards.c.version == model_versions.c.version,
        model_cards.c.revision == model_versions.c.card_revision,
    ),
)


def registered(row: sa.Row[Any]) -> RegisteredModel:
    return RegisteredModel(
        name=row.name,
        version=row.version,
        stage=ModelStage(row.stage),
        onnx_sha256=row.onnx_sha256,
        signature=msgspec.json.decode(row.signature, type=ModelSignature),
        card=msgspec.json.decode(row.card, type=ModelCard),
        card_revision=row.card_revision,
        card_status=CardStatus(row.card_status),
        lineage=msgspec.json.decode(row.lineage, type=ModelLineage),
        created_at=utc(row.created_at),
        created_by=row.created_by,
        description=row.description,
        tags=msgspec.json.decode(row.tags, type=dict[str, str]),
    )


def version_row(model: RegisteredModel) -> dict[str, Any]:
    """The ``model_versions`` row of a new version (without its card, which has its own table)."""
    lineage = model.lineage
    return {
        "name": model.name,
        "version": model.version,
        "stage": model.stage.value,
        "onnx_sha256": model.onnx_sha256,
        "signature": encode(model.signature),
        "lineage": encode(lineage),
        "mlflow_run_id": lineage.mlflow_run_id,
        "parent_version": lineage.parent_version,
        "code_version": lineage.code_version,
        "dataset_uri": lineage.training_dataset.uri,
        "dataset_sha256": lineage.training_dataset.sha256,
        "card_revision": model.card_revision,
        "created_at": model.created_at,
        "created_by": model.created_by,
        "description": model.description,
        "tags": encode(model.tags),
    }
