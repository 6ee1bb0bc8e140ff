"""Shapes of the prediction log's REST API and of its read API.

An **outcome** is what happened after a prediction: a ground-truth ``label`` (classification
or regression target), a ``conversion`` (did the business event happen) and/or a numeric
``value`` (revenue, time spent). At least one of the three must be given. Outcomes are keyed by
``(request_id, row_index)``; ``row_index`` defaults to 0 (single-row requests).

``POST /v1/feedback`` takes one outcome object, or ``{"outcomes": [...]}`` with up to
:data:`MAX_FEEDBACK` of them. A batch that names one key twice keeps the last one.

>>> decode_feedback(b'{"request_id": "r1", "conversion": true}')[0].row_index
0
>>> len(decode_feedback(b'{"outcomes": [{"request_id": "a", "value": 2.5}]}'))
1
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

import msgspec

from modelyard.errors import InvalidArgument
from modelyard.models import NO_NUL, InputValue, Int64, MeasureFloat
from modelyard.prediction_log import PredictionRecord, Value

MAX_FEEDBACK = 10_000
"""Outcomes one ``POST /v1/feedback`` may carry."""

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=NO_NUL)]
RowIndex = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Label = str | Int64 | MeasureFloat | bool


class Outcome(InputValue, kw_only=True, frozen=True):
    """One outcome of one logged row.

    Attributes:
        request_id: the request id the inference server logged (and returned).
        row_index: the row within the request (default 0).
        label: ground truth (class label or target value).
        conversion: whether the business event happened.
        value: a numeric business outcome.
    """

    request_id: RequestId
    row_index: RowIndex = 0
    label: Label | None = None
    conversion: bool | None = None
    value: MeasureFloat | None = None


class FeedbackBatch(InputValue, kw_only=True, frozen=True):
    """The batched form of ``POST /v1/feedback``."""

    outcomes: Annotated[list[Outcome], msgspec.Meta(min_length=1, max_length=MAX_FEEDBACK)]


class UnpackResult(msgspec.Struct, kw_only=True, frozen=True):
    """What ``POST /v1/predictions/unpack`` did.

    Attributes:
        unpacked_blocks: shipped blocks this call unpacked into records.
        pending_blocks: blocks waiting afterwards (shipped since, or held by no one yet).
        pending_records: the records those blocks hold.
        dropped_blocks: shipped blocks this call deleted without records (damaged, or
            refused by the checks or the database; each logged with its key).
    """

    unpacked_blocks: int
    pending_blocks: int
    pending_records: int
    dropped_blocks: int = 0


class FeedbackResult(msgspec.Struct, kw_only=True, frozen=True):
    """What ``POST /v1/feedback`` did.

    Attributes:
        accepted: outcomes stored (after collapsing keys repeated in the batch).
        replaced: of those, how many overwrote an earlier outcome (duplicates; last write wins).
        repeated_in_batch: outcomes dropped because a later one in the same batch had the key.
        unmatched: outcomes whose prediction is not in the log (yet): they are kept and join
            the record once it arrives (the servers ship records asynchronously).
    """

    accepted: int
    replaced: int
    repeated_in_batch: int
    unmatched: int


class StoredOutcome(msgspec.Struct, kw_only=True, frozen=True):
    """An outcome as stored: the values of its last write, when, and how often written."""

    label: Label | None = None
    conversion: bool | None = None
    value: float | None = None
    received_at: dt.datetime
    updated_at: dt.datetime
    writes: int


class LabelledPrediction(msgspec.Struct, kw_only=True, frozen=True):
    """A logged record and its outcome (``None`` while no outcome was given)."""

    record: PredictionRecord
    outcome: StoredOutcome | None = None


class PredictionQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Filters and page of a listing (records ordered by ``id``, i.e. arrival in the log).

    Attributes:
        model: only this model.
        version: only this version (needs ``model``).
        variant: only this variant (``control``, ``treatment``, ``shadow``, ``none``).
        since: created at or after (UTC).
        until: created before (UTC).
        after_id: only records with a larger ``id`` (the cursor).
        limit: page size.
        include_shadow: list shadow records too (listings: yes; ``labelled``: no by default).
    """

    model: str | None = None
    version: int | None = None
    variant: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    after_id: int = 0
    limit: int = 100
    include_shadow: bool = True


class PredictionPage(msgspec.Struct, kw_only=True, frozen=True):
    """One page of records; pass ``next_cursor`` as ``cursor`` for the next (None: last page)."""

    items: list[PredictionRecord]
    next_cursor: int | None = None


_decoder = msgspec.json.Decoder()


def decode_feedback(body: bytes) -> list[Outcome]:
    """The outcomes of a ``POST /v1/feedback`` body (single or batched form).

    Raises:
        InvalidArgument: not JSON, not an object, an invalid outcome (the message says which
            and why), none of label/conversion/value given, or too many outcomes.
    """
    try:
        raw: Any = _decoder.decode(body)
    except msgspec.DecodeError as error:
        raise InvalidArgument(f"request body is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise InvalidArgument("feedback must be a JSON object (one outcome, or {'outcomes': []})")
    try:
        outcomes = (
            msgspec.convert(raw, FeedbackBatch).outcomes
            if "outcomes" in raw
            else [msgspec.convert(raw, Outcome)]
        )
    except msgspec.ValidationError as error:
        raise InvalidArgument(f"invalid feedback: {error}") from None
    return check_outcomes(outcomes)


def check_outcomes(outcomes: list[Outcome]) -> list[Outcome]:
    """``outcomes`` if each carries a value and there are at most :data:`MAX_FEEDBACK`.

    Raises:
        InvalidArgument: as :func:`decode_feedback`.
    """
    if len(outcomes) > MAX_FEEDBACK:
        raise InvalidArgument(f"at most {MAX_FEEDBACK} outcomes per call, got {len(outcomes)}")
    for i, outcome in enumerate(outcomes):
        if outcome.label is None and outcome.conversion is None and outcome.value is None:
            raise InvalidArgument(
                f"outcome {i} (request {outcome.request_id!r}) gives none of "
                "label, conversion, value"
            )
        if outcome.value is not None and not math.isfinite(outcome.value):
            raise InvalidArgument(f"outcome {i}: value must be a finite number")
    return outcomes


__all__ = [
    "MAX_FEEDBACK",
    "FeedbackBatch",
    "FeedbackResult",
    "LabelledPrediction",
    "Outcome",
    "PredictionPage",
    "PredictionQuery",
    "StoredOutcome",
    "Value",
    "check_outcomes",
    "decode_feedback",
]
