"""Model card completeness rules and the card hash approvals sign.

A card is complete when every section a reviewer needs is filled in:

* ``model_details``: name, overview, version and license non-blank; at least one owner, each
  with a non-blank name;
* ``intended_uses`` and ``out_of_scope_uses``: at least one non-blank entry each;
* ``training_data`` and ``evaluation_data``: a non-blank name and a URI or a content hash;
* ``metrics``: at least one, each with a non-blank type and a finite value;
* ``limitations``: at least one non-blank entry;
* ``ethical_considerations``: at least one risk, each with a non-blank name and mitigation.

``tradeoffs``, references and citation are optional.

>>> from modelyard.models import ModelCard
>>> card_problems(msgspec.convert(minimal_card_data(), ModelCard))
[]
>>> data = minimal_card_data() | {"limitations": ["  "]}
>>> card_problems(msgspec.convert(data, ModelCard))
['limitations: at least one non-blank entry is required']
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import msgspec

from modelyard.errors import InvalidArgument
from modelyard.models import DatasetInfo, ModelCard

_CARD_ENCODER = msgspec.json.Encoder(order="sorted")


def card_sha256(card: ModelCard) -> str:
    """SHA-256 of the card's canonical JSON (keys sorted): what an approval signs."""
    return hashlib.sha256(_CARD_ENCODER.encode(card)).hexdigest()


def _blank(value: str) -> bool:
    return not value.strip()


def _entries(field: str, values: tuple[str, ...]) -> list[str]:
    if any(not _blank(v) for v in values):
        return []
    return [f"{field}: at least one non-blank entry is required"]


def _dataset(field: str, data: DatasetInfo) -> list[str]:
    problems = [f"{field}.name is blank"] if _blank(data.name) else []
    if _blank(data.uri) and _blank(data.sha256):
        problems.append(f"{field}: a uri or a sha256 is required")
    return problems


def _details(card: ModelCard) -> list[str]:
    details = card.model_details
    problems = [
        f"model_details.{key} is blank"
        for key in ("name", "overview", "version", "license")
        if _blank(getattr(details, key))
    ]
    if not details.owners or any(_blank(owner.name) for owner in details.owners):
        problems.append("model_details.owners: at least one owner, each with a name")
    return problems


def _metrics(card: ModelCard) -> list[str]:
    if not card.metrics:
        return ["metrics: at least one metric is required"]
    return [
        f"metrics[{i}]: a type and a finite value are required"
        for i, metric in enumerate(card.metrics)
        if _blank(metric.type) or not math.isfinite(metric.value)
    ]


def _risks(card: ModelCard) -> list[str]:
    if not card.ethical_considerations:
        return ["ethical_considerations: at least one consideration is required"]
    return [
        f"ethical_considerations[{i}]: a name and a mitigation are required"
        for i, risk in enumerate(card.ethical_considerations)
        if _blank(risk.name) or _blank(risk.mitigation)
    ]


def card_problems(card: ModelCard) -> list[str]:
    """Every completeness rule the card breaks (empty when complete)."""
    return [
        *_details(card),
        *_entries("intended_uses", card.intended_uses),
        *_entries("out_of_scope_uses", card.out_of_scope_uses),
        *_dataset("training_data", card.training_data),
        *_dataset("evaluation_data", card.evaluation_data),
        *_metrics(card),
        *_entries("limitations", card.limitations),
        *_risks(card),
    ]


def require_complete(card: ModelCard | None, what: str) -> ModelCard:
    """``card`` if it is present and complete.

    Raises:
        InvalidArgument: no card, or the card breaks completeness rules (all are named).
    """
    if card is None:
        raise InvalidArgument(f"{what}: a model card is required")
    problems = card_problems(card)
    if problems:
        raise InvalidArgument(f"{what}: incomplete model card: {'; '.join(problems)}")
    return card


def minimal_card_data() -> dict[str, Any]:
    """The smallest complete card, as plain data (examples, tests, ``models card --template``)."""
    return {
        "model_details": {
            "name": "example",
            "overview": "What the model predicts and for whom.",
            "owners": [{"name": "ml-team", "contact": "ml@example.com"}],
            "version": "1",
            "license": "Apache-2.0",
        },
        "intended_uses": ["Rank accounts by churn risk for retention offers."],
        "out_of_scope_uses": ["Credit decisions."],
        "training_data": {"name": "accounts-2026-10", "uri": "s3://bucket/train.parquet"},
        "evaluation_data": {"name": "accounts-2026-11", "uri": "s3://bucket/eval.parquet"},
        "metrics": [{"type": "roc_auc", "value": 0.91}],
        "limitations": ["Trained on one region only."],
        "ethical_considerations": [{"name": "Proxy bias", "mitigation": "Audited per region."}],
    }
