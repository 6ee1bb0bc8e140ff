"""Domain error code -> HTTP status: the one translation table of the control plane.

Every error body is JSON ``{"error": "<message naming the problem>", "code": "<code>"}``.
Framework errors (unknown route, undecodable body) get the same shape. Three failures of
outside input that surface as Python errors inside the framework or the database driver are
the client's, not ours, and answer 4xx naming the problem: a body that is not valid UTF-8
(400), JSON nested deeper than the decoder's recursion limit (400), a number beyond 64 bits
(422; path and query numbers are bounded in :mod:`control_plane.params` first), and a value
the database refuses as data (PostgreSQL SQLSTATE class 22: a NUL character in a string, a
number beyond its column's range; 422).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from sqlalchemy.exc import DBAPIError

from modelyard.errors import ErrorCode, ModelyardError
from modelyard.models import NAME_PATTERN, NO_NUL

logger = logging.getLogger(__name__)

HTTP_STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
    ErrorCode.INTERNAL: 500,
}


def error_response(status: int, message: str, code: str) -> Response[dict[str, str]]:
    """The JSON error body every failure answers with."""
    return Response({"error": message, "code": code}, status_code=status)


def domain_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """Translate a :class:`ModelyardError` through :data:`HTTP_STATUS_BY_CODE`."""
    assert isinstance(exc, ModelyardError)
    return error_response(HTTP_STATUS_BY_CODE[exc.code], exc.message, exc.code.value)


_PATTERN_RULES = {
    NAME_PATTERN: "1-128 letters, digits and _ . -, starting with a letter or digit",
    NO_NUL: "text without NUL characters",
}
"""The rule in words of each pattern the API declares on a text (the decoder names the
regular expression: ``Expected `str` matching regex '^[^\\x00]*$'``)."""


def _in_words(message: str) -> str:
    r"""A decoder's message with a known pattern said as its rule.

    >>> _in_words("Expected `str` matching regex '^[^\\\\x00]*$' - at `$.reason`")
    'Expected text without NUL characters - at `$.reason`'
    """
    for pattern, rule in _PATTERN_RULES.items():
        regex = f"`str` matching regex {pattern!r}"
        if regex in message:
            return message.replace(regex, rule)
    return message


def validation_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """A body or parameter that does not decode is an invalid argument (422)."""
    assert isinstance(exc, ValidationException)
    details = "; ".join(
        f"{item.get('key', '')}: {_in_words(str(item.get('message', '')))}".strip(": ")
        for item in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(item, dict)
    )
    message = f"{exc.detail}: {details}" if details else str(exc.detail)
    return error_response(HTTP_422_UNPROCESSABLE_ENTITY, message, ErrorCode.INVALID_ARGUMENT.value)


def http_error_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """Framework HTTP errors (404 route, 405 method, 401/403 guards) in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), "http_error")


def bad_encoding_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """A request body that is not valid UTF-8 (the JSON decoder raises UnicodeDecodeError)."""
    assert isinstance(exc, UnicodeDecodeError)
    message = f"request body is not valid UTF-8 (byte {exc.start}: {exc.reason})"
    return error_response(HTTP_400_BAD_REQUEST, message, ErrorCode.INVALID_ARGUMENT.value)


def too_deep_handler(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """JSON nested beyond the decoder's recursion limit (msgspec raises RecursionError)."""
    message = "request JSON nests too deeply (limit: the decoder's recursion depth)"
    return error_response(HTTP_400_BAD_REQUEST, message, ErrorCode.INVALID_ARGUMENT.value)


def out_of_range_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, str]]:
    """A number the database cannot store (the driver raises OverflowError beyond 64 bits)."""
    logger.warning("number out of range on %s %s: %s", request.method, request.url.path, exc)
    message = (
        "a number or date in the request is out of range (integers are at most 2**63-1, "
        "dates within years 1-9999)"
    )
    return error_response(HTTP_422_UNPROCESSABLE_ENTITY, message, ErrorCode.INVALID_ARGUMENT.value)


def database_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, str]]:
    """A value the database refuses as data (SQLSTATE class 22) is the client's; else 500."""
    assert isinstance(exc, DBAPIError)
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    if not sqlstate.startswith("22"):
        return internal_error_handler(request, exc)
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else sqlstate
    logger.warning("data refused on %s %s: %s", request.method, request.url.path, reason)
    return error_response(
        HTTP_422_UNPROCESSABLE_ENTITY,
        f"a value in the request cannot be stored: {reason}",
        ErrorCode.INVALID_ARGUMENT.value,
    )


def internal_error_handler(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, str]]:
    """Anything unexpected: logged once here, answered as 500 without internals."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal error", ErrorCode.INTERNAL.value
    )


EXCEPTION_HANDLERS = {
    ModelyardError: domain_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    UnicodeDecodeError: bad_encoding_handler,
    RecursionError: too_deep_handler,
    OverflowError: out_of_range_handler,
    DBAPIError: database_error_handler,
    Exception: internal_error_handler,
}
