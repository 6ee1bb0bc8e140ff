"""REST access to the prediction log: a thin controller over :class:`PredictionService`.

==============================  ======  ======================================================
``GET /v1/predictions``         200     records: ``model``, ``version``, ``variant``,
                                        ``since``, ``until`` (ISO 8601, UTC if no offset),
                                        ``limit`` (1..1000), ``cursor`` (the previous page's
                                        ``next_cursor``)
``POST /v1/feedback``           200     outcomes: one object or ``{"outcomes": [...]}``
``POST /v1/predictions/unpack`` 200     unpack the shipped blocks now; what still waits
==============================  ======  ======================================================

Records carry the callers' inputs, so reading them needs a token with the ``read`` permission
(any role); feedback needs ``write`` (developer or admin), unpacking ``admin``. Every read
first unpacks the blocks the servers shipped, so it sees every shipped answer. Errors are
JSON ``{"error", "code"}`` (422 for an invalid filter or outcome, naming it).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from control_plane.params import TextQuery, VersionQuery
from control_plane.predictions.models import (
    FeedbackResult,
    PredictionPage,
    UnpackResult,
    decode_feedback,
)
from control_plane.predictions.service import MAX_PAGE, PredictionService
from control_plane.security.models import Permission
from modelyard.timestamps import given_utc


class PredictionController(Controller):
    """``/v1/predictions`` and ``/v1/feedback``."""

    path = "/v1"
    tags = ["predictions"]

    @get("/predictions", opt={"permission": Permission.READ})
    async def list_predictions(
        self,
        prediction_service: NamedDependency[PredictionService],
        model: TextQuery = None,
        version: VersionQuery = None,
        variant: TextQuery = None,
        since: FromQuery[dt.datetime | None] = None,
        until: FromQuery[dt.datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1)] = None,
    ) -> PredictionPage:
        """Logged prediction rows, oldest first; follow ``next_cursor`` for more."""
        return await prediction_service.list_predictions(
            model=model,
            version=version,
            variant=variant,
            since=given_utc("since", since),
            until=given_utc("until", until),
            limit=limit,
            cursor=cursor,
        )

    @post("/predictions/unpack", status_code=200, opt={"permission": Permission.ADMIN})
    async def unpack(self, prediction_service: NamedDependency[PredictionService]) -> UnpackResult:
        """Unpack every shipped prediction-log block into records now; what still waits."""
        return await prediction_service.unpack_now()

    @post("/feedback", status_code=200, opt={"permission": Permission.WRITE})
    async def record_feedback(
        self,
        request: Request[Any, Any, Any],
        prediction_service: NamedDependency[PredictionService],
    ) -> FeedbackResult:
        """Record outcomes of logged predictions (last write wins, duplicates counted)."""
        outcomes = decode_feedback(await request.body())
        return await prediction_service.record_feedback(outcomes)


__all__ = ["PredictionController"]
