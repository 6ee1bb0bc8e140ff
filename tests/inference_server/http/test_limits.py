"""Socket-level tests of the HTTP protocol's limits: header block size (431), the whole-request
deadline against slow clients (408), and pipelined requests answered before the error."""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource

from inference_server.http.messages import HttpRequest, HttpResponse
from inference_server.http.server import HttpServer, serve
from modelyard.settings import ServerSettings


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, b'{"path":"%s","size":%d}' % (request.path, len(request.body)))


async def _server(**kw: object) -> HttpServer:
    settings = ServerSettings(max_request_bytes=1024, **kw)  # type: ignore[arg-type]
    return await serve(_echo, "127.0.0.1", 0, settings)


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 10)


def _statuses(answer: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)


async def test_header_block_over_the_limit_is_431_and_closes() -> None:
    server = await _server(max_header_bytes=4096)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        many = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(60))  # ~6.6 KB
        writer.write(b"GET /a HTTP/1.1\r\nhost: x\r\n" + many + b"\r\n")
        answer = await _read_all(reader)
        assert _statuses(answer) == [b"431"]
        assert b"request head exceeds the limit of 4096 bytes" in answer
        writer.close()
        # Just under the limit is fine.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /b HTTP/1.1\r\nhost: x\r\nx-a: " + b"v" * 3900 + b"\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        await server.close()


async def test_endless_header_line_is_refused_before_it_fills_memory() -> None:
    server = await _server(max_header_bytes=64 * 1024)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /a HTTP/1.1\r\nx-long: ")
        answer = asyncio.ensure_future(_read_all(reader))
        chunk = b"v" * 65536
        sent = 0
        with contextlib.suppress(ConnectionError):
            while not answer.done() and sent < 256 * 1024 * 1024:  # a 256 MB header line
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0)
                sent += len(chunk)
        assert _statuses(await answer) == [b"431"]
        assert sent < 256 * 1024 * 1024
        writer.close()
    finally:
        await server.close()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert grown_kib < 64 * 1024


async def test_slow_client_gets_408_within_the_request_deadline() -> None:
    server = await serve(
        _echo, "127.0.0.1", 0, ServerSettings(request_timeout_s=0.4), idle_timeout_s=30.0
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        request = b"GET /slow HTTP/1.1\r\nhost: x\r\nx-pad: " + b"v" * 200 + b"\r\n\r\n"
        answer = b""
        loop = asyncio.get_running_loop()
        started = loop.time()
        for byte in request:  # one byte every 20 ms: never idle, never finished in time
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
            try:
                answer = await asyncio.wait_for(reader.read(), 0.02)
            except TimeoutError:
                continue
            break
        elapsed = loop.time() - started
        answer += await _read_all(reader)
        assert _statuses(answer) == [b"408"]
        assert b"request not received in time" in answer
        assert elapsed < 5.0
        writer.close()
        # A prompt client on a fresh connection is served.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /fast HTTP/1.1\r\nconnection: close\r\n\r\n")
        assert _statuses(await _read_all(reader)) == [b"200"]
        writer.close()
    finally:
        await server.close()


async def test_pipelined_valid_requests_are_answered_before_the_400() -> None:
    server = await _server()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        good = b"POST /one HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc"
        good += b"GET /two HTTP/1.1\r\nhost: x\r\n\r\n"
        writer.write(good + b"BLAH /three HTTP/9.9 what\r\n\r\n")
        answer = await _read_all(reader)
        assert _statuses(answer) == [b"200", b"200", b"400"]
        first, second = answer.index(b'"path":"/one"'), answer.index(b'"path":"/two"')
        assert first < second < answer.index(b"malformed HTTP request")
        assert answer.count(b"connection: close") == 1
        writer.close()
    finally:
        await server.close()


async def test_pipelined_valid_request_before_an_oversized_head_is_answered() -> None:
    server = await _server(max_header_bytes=2048)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n"
            + b"GET /big HTTP/1.1\r\nx-a: "
            + b"v" * 4096
            + b"\r\n\r\n"
        )
        answer = await _read_all(reader)
        assert _statuses(answer) == [b"200", b"431"]
        assert answer.index(b'"path":"/ok"') < answer.index(b"request head exceeds")
        writer.close()
    finally:
        await server.close()
