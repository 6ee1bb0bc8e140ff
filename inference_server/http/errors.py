"""The one table translating domain error codes into HTTP statuses, and the error body.

Every error leaves the HTTP adapter as ``{"error": "<message>"}`` with the status below.
States that clear by themselves (no version ready, draining, queue full) answer 503/429 with
``retry-after`` so clients retry; they never answer 400. A test asserts the table covers every
:class:`~modelyard.errors.ErrorCode`.
"""

from __future__ import annotations

import logging
from typing import Final

import msgspec

from inference_server.http.messages import HttpResponse
from modelyard.errors import ErrorCode, ModelyardError

logger = logging.getLogger(__name__)

STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}
"""ErrorCode -> HTTP status."""

RETRYABLE: Final = frozenset({ErrorCode.RESOURCE_EXHAUSTED, ErrorCode.UNAVAILABLE})
_RETRY_AFTER: Final = ((b"retry-after", b"1"),)
_CHALLENGE: Final = ((b"www-authenticate", b'Bearer realm="modelyard"'),)


class ErrorBody(msgspec.Struct, kw_only=True):
    """The body of every error response."""

    error: str


_encode = msgspec.json.Encoder().encode


def error_response(status: int, message: str) -> HttpResponse:
    """An ``{"error": message}`` response with ``status``.

    >>> error_response(404, "model 'x' not found").body
    b'{"error":"model \\'x\\' not found"}'
    """
    return HttpResponse(status, _encode(ErrorBody(error=message)))


def domain_error_response(exc: ModelyardError) -> HttpResponse:
    """Translate a domain error through :data:`STATUS`.

    Retryable codes add ``retry-after``; 401 adds the ``www-authenticate: Bearer`` challenge.
    """
    response = error_response(STATUS[exc.code], exc.message)
    if exc.code in RETRYABLE:
        response.headers = _RETRY_AFTER
    elif exc.code is ErrorCode.UNAUTHENTICATED:
        response.headers = _CHALLENGE
    return response


def internal_error_response(exc: Exception) -> HttpResponse:
    """Log an unexpected exception once, here at the edge, and answer 500."""
    logger.exception("unexpected error in the HTTP adapter", exc_info=exc)
    return error_response(500, "internal server error")
