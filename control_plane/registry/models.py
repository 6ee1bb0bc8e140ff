"""Registry shapes: what callers send (registration, transition, card edit, review) and what
the registry answers beyond :class:`modelyard.models.RegisteredModel` (card revisions, reviews).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import msgspec

from modelyard.enums import CardStatus, ModelStage
from modelyard.models import (
    FiniteFloat,
    InputValue,
    ModelCard,
    ModelLineage,
    ModelSignature,
    Name,
    RegisteredModel,
    Text,
)


class ModelRegistration(InputValue, kw_only=True, frozen=True):
    """Body of ``POST /v1/models/{name}/versions``: one new version of a model.

    Attributes:
        onnx: the ONNX model (base64 in JSON).
        signature: inputs/outputs; derived from the ONNX graph when omitted.
        card: the model card (required; checked for completeness).
        lineage: what the version was built from.
        fidelity: conversion fidelity figures, merged into ``lineage.fidelity``.
        description: free text.
        tags: free key/value labels.
        reference_sample: the training sample (feature -> values, columns of equal length);
            monitoring stores the version's reference profile built from it.
        reference_score: the model's score on that sample (positive-class probability or
            prediction), profiled too when given.
    """

    onnx: bytes
    card: ModelCard | None = None
    lineage: ModelLineage
    signature: ModelSignature | None = None
    fidelity: dict[str, FiniteFloat] = msgspec.field(default_factory=dict)
    description: Text = ""
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    reference_sample: dict[str, list[Any]] | None = None
    reference_score: list[FiniteFloat] | None = None


class StageTransition(InputValue, kw_only=True, frozen=True):
    """Body of a stage transition."""

    stage: ModelStage
    reason: Text = ""


class CardEdit(InputValue, kw_only=True, frozen=True):
    """Body of a card edit: the new content, which becomes a new draft revision."""

    card: ModelCard
    reason: Text = ""


class CardSubmission(InputValue, kw_only=True, frozen=True):
    """Body of a request for review (draft -> pending_review)."""

    reason: Text = ""


class ReviewDecision(enum.Enum):
    """What a reviewer decides."""

    APPROVED = "approved"
    REJECTED = "rejected"


class CardReviewRequest(InputValue, kw_only=True, frozen=True):
    """Body of a review: approve or reject the current, pending revision.

    Attributes:
        decision: approved or rejected.
        reason: why.
        revision: the revision the reviewer read; refused if it is no longer current.
    """

    decision: ReviewDecision
    reason: Text = ""
    revision: int | None = None


class CardReview(msgspec.Struct, kw_only=True, frozen=True):
    """One status change of a card revision: who, when, from, to, and the hash it signed."""

    revision: int
    from_status: CardStatus
    to_status: CardStatus
    actor: str
    occurred_at: dt.datetime
    card_sha256: str
    reason: str = ""


class CardRevision(msgspec.Struct, kw_only=True, frozen=True):
    """One revision of a version's model card.

    Attributes:
        name: model name.
        version: model version.
        revision: 1 at registration, n+1 per edit.
        card: the content.
        card_sha256: SHA-256 of the canonical JSON of ``card`` (what approvals sign).
        status: review status.
        created_at: when the revision was written (UTC).
        created_by: who wrote it.
        reason: why it was written.
        reviews: its status changes, oldest first.
    """

    name: str
    version: int
    revision: int
    card: ModelCard
    card_sha256: str
    status: CardStatus
    created_at: dt.datetime
    created_by: str
    reason: str = ""
    reviews: tuple[CardReview, ...] = ()


class ModelVersionRef(msgspec.Struct, kw_only=True, frozen=True):
    """A (model, version) pair with its stage: an answer to "which versions used feature X"."""

    name: str
    version: int
    stage: ModelStage


class FeatureUsage(msgspec.Struct, kw_only=True, frozen=True):
    """The versions built from one feature version."""

    feature: Name
    feature_version: int
    models: tuple[ModelVersionRef, ...]


class ModelSummary(msgspec.Struct, kw_only=True, frozen=True):
    """One registered model name: its latest version and its Production version."""

    name: str
    latest_version: int
    production_version: int | None


__all__ = [
    "CardEdit",
    "CardReview",
    "CardReviewRequest",
    "CardRevision",
    "CardSubmission",
    "FeatureUsage",
    "ModelRegistration",
    "ModelSummary",
    "ModelVersionRef",
    "RegisteredModel",
    "ReviewDecision",
    "StageTransition",
]
