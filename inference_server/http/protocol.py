"""A minimal HTTP/1.1 server: one ``asyncio.Protocol`` per connection, parsed by httptools.

Why not an ASGI framework: a bare raw-ASGI echo on uvicorn spends 2.2x the CPU per request
of this protocol (40.8k vs 88.8k requests per CPU-second; ``benchmarks/RESULTS.md``,
``## HTTP framework choice``). The ASGI layer builds a scope dict, two message dicts and three
coroutine hops per request; here a request is one parser pass, one small object, one task.

Design:
- httptools (the llhttp parser uvicorn uses) calls back per URL/header/body chunk; a request
  is complete at ``on_message_complete`` and handed to the :data:`Handler`.
- Requests on one connection are answered strictly in order (HTTP/1.1 pipelining): one
  request runs at a time per connection; later ones wait in a bounded deque (reading pauses
  when it is full). Concurrency comes from many connections, as with every HTTP/1.1 client.
- Bodies: ``Content-Length`` and ``Transfer-Encoding: chunked`` (httptools de-chunks). A body
  over ``max_body_bytes`` is refused with 413 as soon as the headers announce it (or the
  chunks exceed it), before it is read, and the connection is closed.
- Back-pressure both ways: reading pauses while ``max_pipelined`` requests wait, and
  answering pauses while the transport's write buffer is over its high-water mark, so a
  client that sends without reading holds a bounded amount of memory.
- Malformed HTTP gets a 400 and the connection closes; other connections are unaffected.
  Every complete request that came before the bad bytes is answered first, in order, and the
  error is the last answer on the connection (a pipelining client must not read the 400 as
  the answer to its valid request).
- A request head (request line + headers) over ``max_header_bytes`` is refused with 431 and
  the connection closes; the count runs while the head arrives, so a client cannot make the
  parser buffer an endless header line.
- Slow clients (slowloris): a request whose head and body have not fully arrived within
  ``request_timeout_s`` of its first byte gets 408 and the connection closes, however often
  it trickles a byte; idle keep-alive connections close after the idle timeout. Both are
  checked by one periodic sweep, not a timer per request.
- :meth:`HttpConnection.shutdown` lets the server drain: idle connections close at once, a
  busy one closes after the response in flight.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import cast

import httptools

from inference_server.http.errors import error_response
from inference_server.http.messages import DateHeader, Handler, HttpRequest, HttpResponse, render

logger = logging.getLogger(__name__)

# After a refusal the server stops writing but reads (and drops) what the client still sends
# for this long: closing with unread input makes the kernel send a reset, and the client would
# lose the error answer (nginx's "lingering close").
_LINGER_S = 2.0


class ConnectionLimits:
    """Per-connection limits shared by every connection of one server."""

    __slots__ = ("max_body_bytes", "max_header_bytes", "max_pipelined", "request_timeout_s")

    def __init__(
        self,
        max_body_bytes: int,
        max_pipelined: int = 32,
        *,
        max_header_bytes: int = 64 * 1024,
        request_timeout_s: float = 30.0,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_pipelined = max_pipelined
        self.max_header_bytes = max_header_bytes
        self.request_timeout_s = request_timeout_s


class ConnectionRegistry:
    """The open connections of one server, so it can drain them on close."""

    __slots__ = ("_connections", "_empty", "closing")

    def __init__(self) -> None:
        self._connections: set[HttpConnection] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        # Set when the server drains: connections that arrive now are closed at once.
        self.closing = False

    def __len__(self) -> int:
        return len(self._connections)

    def add(self, connection: HttpConnection) -> None:
        self._connections.add(connection)
        self._empty.clear()
        if self.closing:
            connection.shutdown()

    def discard(self, connection: HttpConnection) -> None:
        self._connections.discard(connection)
        if not self._connections:
            self._empty.set()

    def snapshot(self) -> list[HttpConnection]:
        """The connections open now."""
        return list(self._connections)

    async def wait_empty(self) -> None:
        """Return once every connection has closed."""
        await self._empty.wait()

    async def sweep_idle(self, timeout_s: float, request_timeout_s: float | None = None) -> None:
        """Forever: close connections idle for ``timeout_s``, and refuse (408) requests still
        arriving ``request_timeout_s`` after their first byte.

        One sweep for all connections instead of a timer per request keeps the hot path free
        of timer churn; a connection lives at most 1.5x ``timeout_s`` idle, a request at most
        1.5x ``request_timeout_s`` in arrival.
        """
        loop = asyncio.get_running_loop()
        request_timeout = timeout_s if request_timeout_s is None else request_timeout_s
        while True:
            await asyncio.sleep(min(timeout_s, request_timeout) / 2)
            now = loop.time()
            for connection in list(self._connections):
                connection.close_if_idle(now - timeout_s)
                connection.refuse_if_slow(now - request_timeout)


class HttpConnection(asyncio.Protocol):
    """One client connection: parse, dispatch to the handler in order, write responses."""

    def __init__(
        self,
        handler: Handler,
        limits: ConnectionLimits,
        connections: ConnectionRegistry,
        date: DateHeader,
    ) -> None:
        self._handler = handler
        self._limits = limits
        self._connections = connections
        self._date = date
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._refused = False
        self._refusal: HttpResponse | None = None
        # Bytes of the head in progress: named by the parser's callbacks, and swallowed in
        # whole reads (a line the parser still buffers); each is a lower bound, -1 when done.
        self._head_bytes = -1
        self._head_raw = 0
        self._max_head = limits.max_header_bytes
        # Loop time the request now arriving began (None: between requests).
        self._started: float | None = None
        self._pending: collections.deque[tuple[HttpRequest, bool]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self.last_active = self._loop.time()
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True
        self._pending.clear()
        self._transport = None
        self._writable.set()

    def pause_writing(self) -> None:
        # The client does not read its answers: stop answering (and so, soon, reading).
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self.last_active = self._loop.time()
        started = self._started
        in_head = started is not None and self._head_bytes >= 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(error_response(400, "protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            if not self._refused:
                self._refuse(error_response(400, f"malformed HTTP request: {exc}"))
        else:
            # The parser buffers a header line until it ends: count what a head in progress
            # swallowed whole, so an endless line is refused before it fills the memory.
            if in_head and self._started == started and self._head_bytes >= 0:
                self._head_raw += len(data)
                self._check_head(self._head_raw)

    def eof_received(self) -> bool:
        # The client will send no more; answer what is in flight, then close.
        self._closing = True
        return self._task is not None and not self._refused

    # -- httptools callbacks -------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._head_bytes = 0
        self._head_raw = 0
        self._started = self.last_active  # the arrival of the read holding the first byte

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head:
            self._check_head(self._head_bytes)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_bytes > self._max_head:  # inline: this runs for every header
            self._check_head(self._head_bytes)

    def _check_head(self, size: int) -> None:
        if size > self._max_head and not self._refused:
            limit = self._limits.max_header_bytes
            self._refuse(error_response(431, f"request head exceeds the limit of {limit} bytes"))

    def on_headers_complete(self) -> None:
        self._head_bytes = -1  # the head is complete: stop counting
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_body_bytes:
            self._refuse_too_large()
        elif self._headers.get(b"expect", b"").lower() == b"100-continue" and self._task is None:
            # Only when nothing is in flight: an interim answer must not overtake earlier ones.
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_size += len(body)
        if self._body_size > self._limits.max_body_bytes:
            self._refuse_too_large()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._started = None
        if self._refused:
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        method = self._parser.get_method()
        request = HttpRequest(method, self._url, self._headers, body)
        self._pending.append((request, self._parser.should_keep_alive()))
        if self._task is None:
            # NOTE: the loop kept at connection_made: asyncio.get_running_loop() costs a getpid()
            # system call per call on CPython 3.11.
            self._task = self._loop.create_task(self._serve_pending())
        elif len(self._pending) >= self._limits.max_pipelined and self._transport is not None:
            self._transport.pause_reading()
            self._reading_paused = True

    # -- serving -------------------------------------------------------------------------
    async def _serve_pending(self) -> None:
        try:
            while self._pending and self._transport is not None:
                if not self._writable.is_set():
                    await self._writable.wait()
                    continue
                request, keep_alive = self._pending.popleft()
                try:  # inline, not a coroutine of its own: this runs for every request
                    response = await self._handler(request)
                except Exception:
                    # NOTE: the handler translates every domain error; anything reaching here
                    # is a bug. Log it once, answer 500 and keep the connection serving.
                    logger.exception("unhandled error serving %s %r", request.method, request.path)
                    response = error_response(500, "internal server error")
                close = not keep_alive or (self._closing and not self._pending)
                if self._refusal is not None and not self._pending and not close:
                    # The bad request that followed is answered after the last good one.
                    self._write(render(response, self._date.line(), False))
                    response, close = self._refusal, True
                self._write(render(response, self._date.line(), close))
                if close:
                    self._linger_close() if self._refused else self._close()
                    return
                if (
                    self._reading_paused
                    and not self._refused
                    and len(self._pending) < self._limits.max_pipelined
                ):
                    self._reading_paused = False
                    self._transport.resume_reading()
        finally:
            self._task = None
            self.last_active = self._loop.time()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _refuse(self, response: HttpResponse) -> None:
        """Answer ``response`` and close, after the complete requests already received."""
        self._refused = True
        if self._transport is not None and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True
        if self._task is not None:
            self._refusal = response  # _serve_pending writes it after the last answer
            return
        self._write(render(response, self._date.line(), close=True))
        self._linger_close()

    def _linger_close(self) -> None:
        """Half-close, drop what the client still sends, close after :data:`_LINGER_S`."""
        transport = self._transport
        if transport is None or transport.is_closing() or not transport.can_write_eof():
            self._close()
            return
        transport.write_eof()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        self._loop.call_later(_LINGER_S, self._close)

    def _refuse_too_large(self) -> None:
        limit = self._limits.max_body_bytes
        self._refuse(error_response(413, f"request body exceeds the limit of {limit} bytes"))

    def _close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def close_if_idle(self, before: float) -> None:
        """Close if nothing is in flight and nothing arrived since ``before`` (loop time)."""
        if self._task is None and self.last_active < before:
            self._close()

    def refuse_if_slow(self, before: float) -> None:
        """Answer 408 and close if the request now arriving began before ``before``.

        A connection whose reading is paused by back-pressure is not the client's fault and
        is left alone.
        """
        started = self._started
        late = started is not None and started < before
        if late and not self._refused and not self._reading_paused:
            self._refuse(error_response(408, "request not received in time"))

    def abort(self) -> None:
        """Drop the connection now, in-flight request or not."""
        if self._transport is not None:
            self._transport.abort()

    def shutdown(self) -> None:
        """Close when idle: at once if nothing is in flight, else after the current response."""
        self._closing = True
        if self._task is None:
            self._close()
