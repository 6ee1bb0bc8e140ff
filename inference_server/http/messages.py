"""Request and response objects of the HTTP layer, and how a response is serialised.

Plain ``__slots__`` classes: they are built once per request on the hot path, where a
``msgspec.Struct`` or dataclass would add nothing but construction cost.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Final, TypeAlias

_REASONS: Final = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    413: b"Content Too Large",
    415: b"Unsupported Media Type",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}
_JSON: Final = b"application/json"


class HttpRequest:
    """One parsed request.

    Attributes:
        method: the method, e.g. ``b"POST"``.
        path: the URL path without the query, still percent-encoded.
        query: the raw query string (without ``?``), ``b""`` when absent.
        headers: header values by lower-cased name (a repeated header keeps the last value).
        body: the whole body.
    """

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, method: bytes, url: bytes, headers: dict[bytes, bytes], body: bytes) -> None:
        self.method = method
        path, _, query = url.partition(b"?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body


class HttpResponse:
    """A response to write: status, body, content type and extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: bytes = _JSON,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers


Handler: TypeAlias = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""An async callable answering one request; it must translate its own errors."""


class DateHeader:
    """The ``date`` header line, rendered at most once per second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._line


def render(response: HttpResponse, date: bytes, close: bool) -> bytes:
    """Serialise a response (status line, headers, body) into one buffer.

    >>> render(HttpResponse(200, b"{}"), b"", close=False)
    b'HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\n\\r\\n{}'
    """
    reason = _REASONS.get(response.status, b"Unknown")
    parts = [
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
        % (response.status, reason, response.content_type, len(response.body)),
        date,
    ]
    for name, value in response.headers:
        parts.append(b"%s: %s\r\n" % (name, value))
    if close:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    parts.append(response.body)
    return b"".join(parts)


_WBITS: Final = {b"gzip": 16 + zlib.MAX_WBITS, b"deflate": zlib.MAX_WBITS}


class BodyError(Exception):
    """A request body that cannot be decoded; ``status`` is 400, 413 or 415."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decoded_body(request: HttpRequest, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` (gzip, deflate) undone, at most ``limit`` bytes.

    >>> import gzip
    >>> decoded_body(HttpRequest(b"POST", b"/", {b"content-encoding": b"gzip"},
    ...                          gzip.compress(b"abc")), 10)
    b'abc'

    Raises:
        BodyError: an unknown encoding (415), a corrupt stream (400), or more than ``limit``
            bytes once inflated (413).
    """
    encoding = request.headers.get(b"content-encoding")
    if encoding is None or encoding == b"identity":
        return request.body
    wbits = _WBITS.get(encoding.lower())
    if wbits is None:
        raise BodyError(415, f"unsupported Content-Encoding {encoding.decode(errors='replace')!r}")
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(request.body, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"corrupt {encoding.decode()} body: {exc}") from None
    if len(body) > limit:
        raise BodyError(413, f"request body exceeds the limit of {limit} bytes once inflated")
    return body
