"""The simple JSON endpoints for callers without an OIP client.

- ``POST /predict?model=NAME[&version=V][&routing_key=K]``: body is one row, either an object
  (feature name -> value) or a list (values in the model's feature order). Without ``model``
  the row goes to the only model served (an error lists the models when there are several).
  The answer names the model, the version that computed it, the label and the class
  probabilities (or the prediction of a regressor), and the request ``id`` the prediction log
  recorded it under (when the log is on; ``POST /v1/feedback`` joins outcomes on it). A
  model with A/B routes picks the arm by ``routing_key`` (a user id keeps that user on one
  arm) or at random, and the answer names the ``variant``.
- ``POST /predict/batch?model=NAME[&version=V][&routing_key=K]``: body is a list of such
  rows; the answer has one label / probability row / prediction per input row, in order.
- ``GET /health``: ``{"status": "ok", "live": true, "ready": true}``, 503 while not ready.

Mapping rows to tensors and outputs to labels is the service's job
(:meth:`InferenceService.predict_rows`); this module only decodes and encodes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import msgspec

from inference_server.http.messages import HttpResponse
from modelyard.models import Scalar

if TYPE_CHECKING:
    from inference_server.core.types import PredictResult
    from inference_server.http.messages import HttpRequest
    from inference_server.service import InferenceService

Row = dict[str, Scalar] | list[Scalar]


class PredictOne(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Answer of ``/predict``."""

    model: str
    version: str
    variant: str | None = None
    id: str = ""
    label: Scalar = None
    probabilities: list[float] | None = None
    prediction: float | None = None
    class_labels: list[Scalar] | None = None


class PredictMany(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Answer of ``/predict/batch``."""

    model: str
    version: str
    variant: str | None = None
    id: str = ""
    labels: list[Scalar] | None = None
    probabilities: list[list[float]] | None = None
    predictions: list[float] | None = None
    class_labels: list[Scalar] | None = None


class Health(msgspec.Struct, kw_only=True):
    """Answer of ``GET /health``."""

    status: str
    live: bool
    ready: bool


_decode_row = msgspec.json.Decoder(Row).decode
_decode_rows = msgspec.json.Decoder(list[Row]).decode
_encode = msgspec.json.Encoder().encode


Target = tuple[str | None, str | None, str | None]


def _target(request: HttpRequest) -> Target:
    return _parse_target(request.query)


@functools.lru_cache(maxsize=256)
def _parse_target(raw: bytes) -> Target:
    """``?model=NAME[&version=V][&routing_key=K]`` -> (NAME, V, K); memoised, clients repeat
    the same query.

    Without ``model`` the service answers with the only model it serves.

    >>> _parse_target(b"model=churn&version=3")
    ('churn', '3', None)
    >>> _parse_target(b"model=churn&routing_key=user-7")
    ('churn', None, 'user-7')
    >>> _parse_target(b"")
    (None, None, None)
    """
    query = parse_qs(raw.decode(errors="replace")) if raw else {}

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    return first("model"), first("version"), first("routing_key")


async def predict(service: InferenceService, request: HttpRequest) -> HttpResponse:
    """``POST /predict``: score one row.

    Raises:
        InvalidArgument, NotFound, Unavailable, ResourceExhausted: from the service.
        msgspec.ValidationError: the body is not a row.
    """
    model, version, key = _target(request)
    row = _decode_row(request.body)
    result = await service.predict_rows(model, [row], version, key)
    return HttpResponse(200, _encode(_one(result)))


def _one(result: PredictResult) -> PredictOne:
    return PredictOne(
        model=result.model_name,
        version=result.model_version,
        variant=result.variant,
        id=result.id,
        label=result.labels[0] if result.labels else None,
        probabilities=result.probabilities[0] if result.probabilities else None,
        prediction=result.predictions[0] if result.predictions else None,
        class_labels=result.class_labels,
    )


async def predict_batch(service: InferenceService, request: HttpRequest) -> HttpResponse:
    """``POST /predict/batch``: score a list of rows.

    Raises:
        InvalidArgument, NotFound, Unavailable, ResourceExhausted: from the service.
        msgspec.ValidationError: the body is not a list of rows.
    """
    model, version, key = _target(request)
    rows = _decode_rows(request.body)
    result = await service.predict_rows(model, rows, version, key)
    answer = PredictMany(
        model=result.model_name,
        version=result.model_version,
        variant=result.variant,
        id=result.id,
        labels=result.labels,
        probabilities=result.probabilities,
        predictions=result.predictions,
        class_labels=result.class_labels,
    )
    return HttpResponse(200, _encode(answer))


async def health(service: InferenceService, request: HttpRequest) -> HttpResponse:
    """``GET /health``: liveness and readiness in one answer (503 while not ready)."""
    live, ready = service.server_live(), service.server_ready()
    status = "ok" if live and ready else "unavailable"
    body = _encode(Health(status=status, live=live, ready=ready))
    return HttpResponse(200 if ready else 503, body)
