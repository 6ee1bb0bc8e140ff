"""The HTTP/1.1 protocol layer with small real handlers: pipelining, chunked bodies, limits,
keep-alive, graceful close, SO_REUSEPORT."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from inference_server.http.messages import HttpRequest, HttpResponse
from inference_server.http.server import HttpServer, serve
from modelyard.settings import ServerSettings


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, b'{"path":"%s","size":%d}' % (request.path, len(request.body)))


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


@pytest.fixture
async def echo_server() -> AsyncIterator[HttpServer]:
    server = await serve(_echo, "127.0.0.1", 0, ServerSettings(max_request_bytes=1024))
    yield server
    await server.close()


async def test_pipelined_requests_answer_in_order(echo_server: HttpServer) -> None:
    requests = b"".join(
        b"POST /r%d HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (i, i, b"a" * i)
        for i in range(5)
    )
    answer = await _raw(
        echo_server.port, requests + b"GET /last HTTP/1.1\r\nconnection: close\r\n\r\n"
    )
    bodies = [
        part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0]
        for part in answer.split(b"HTTP/1.1 200 OK")[1:]
    ]
    assert bodies == [b'{"path":"/r%d","size":%d}' % (i, i) for i in range(5)] + [
        b'{"path":"/last","size":0}'
    ]


async def test_chunked_body_is_accepted_and_limited(echo_server: HttpServer) -> None:
    chunked = b"POST /c HTTP/1.1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    answer = await _raw(echo_server.port, chunked + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert answer.endswith(b'{"path":"/c","size":5}')
    big = b"400\r\n" + b"x" * 1024 + b"\r\n"
    answer = await _raw(echo_server.port, chunked + big * 2 + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")


async def test_query_is_split_from_path(echo_server: HttpServer) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{echo_server.port}/p?model=a")
    assert response.json() == {"path": "/p", "size": 0}
    assert "date" in response.headers


async def test_http10_without_keep_alive_closes(echo_server: HttpServer) -> None:
    answer = await _raw(echo_server.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in answer


async def test_handler_bug_is_500_and_connection_keeps_serving() -> None:
    calls = 0

    async def flaky(request: HttpRequest) -> HttpResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return HttpResponse(200, b"{}")

    server = await serve(flaky, "127.0.0.1", 0, ServerSettings())
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert (await client.get("/")).status_code == 500
            assert (await client.get("/")).status_code == 200
    finally:
        await server.close()


async def test_close_finishes_in_flight_requests_and_stops_accepting() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: HttpRequest) -> HttpResponse:
        entered.set()
        await release.wait()
        return HttpResponse(200, b'{"done":true}')

    server = await serve(slow, "127.0.0.1", 0, ServerSettings(drain_timeout_s=5))
    port = server.port
    async with httpx.AsyncClient() as client:
        in_flight = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/"))
        await entered.wait()
        closing = asyncio.create_task(server.close())
        await asyncio.sleep(0)  # let close() stop the listener before the check below
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/", headers={"connection": "close"})
        release.set()
        response = await in_flight
        await closing
    assert response.json() == {"done": True}
    assert response.headers["connection"] == "close"


async def test_requests_arriving_during_the_drain_are_answered_or_refused() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == b"/slow":
            entered.set()
            await release.wait()
        return HttpResponse(200, b'{"path":"%s"}' % request.path)

    server = await serve(handler, "127.0.0.1", 0, ServerSettings(drain_timeout_s=30))
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
    idle_writer.write(b"GET /first HTTP/1.1\r\nhost: x\r\n\r\n")
    await idle_reader.readuntil(b'{"path":"/first"}')  # answered; the connection stays open
    busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", server.port)
    busy_writer.write(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
    await entered.wait()
    closing = asyncio.create_task(server.close())
    # an idle keep-alive connection closes at once: a request sent on it fails fast
    assert await asyncio.wait_for(idle_reader.read(), 5) == b""
    # a request reaching a busy connection now is answered after the one in flight, or the
    # connection closes after that one's answer (it was already on its way): never left open
    busy_writer.write(b"GET /after HTTP/1.1\r\nhost: x\r\n\r\n")
    release.set()
    first = await asyncio.wait_for(busy_reader.readuntil(b'{"path":"/slow"}'), 5)
    try:
        rest = await asyncio.wait_for(busy_reader.read(), 5)
    except ConnectionResetError:  # /after reached a closed socket: the kernel resets
        rest = b""
    await asyncio.wait_for(closing, 5)
    for writer in (idle_writer, busy_writer):
        writer.close()
    assert first.startswith(b"HTTP/1.1 200")
    if b"connection: close" in first:  # closed before /after arrived: refused
        assert rest == b""
    else:  # /after arrived in time: answered, and the connection closes after it
        assert rest.startswith(b"HTTP/1.1 200")
        assert rest.endswith(b'{"path":"/after"}')
        assert b"connection: close" in rest


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    first = await serve(_echo, "127.0.0.1", 0, ServerSettings(), reuse_port=True)
    second = await serve(_echo, "127.0.0.1", first.port, ServerSettings(), reuse_port=True)
    try:
        assert second.port == first.port
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{first.port}/shared")
        assert response.json() == {"path": "/shared", "size": 0}
    finally:
        await first.close()
        await second.close()


async def test_idle_and_stalled_connections_are_closed() -> None:
    server = await serve(_echo, "127.0.0.1", 0, ServerSettings(), idle_timeout_s=0.2)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # idle: closed by the server
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /half HTTP/1.1\r\nhost: x\r\n")  # headers never finish
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await server.close()


async def test_expect_100_continue(echo_server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server.port)
    writer.write(b"POST /e HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\n")
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"abc")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK")
    writer.close()


async def test_half_closed_client_still_gets_its_answer(echo_server: HttpServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server.port)
    writer.write(b"GET /half-closed HTTP/1.1\r\nhost: x\r\n\r\n")
    writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.endswith(b'{"path":"/half-closed","size":0}')
    writer.close()


async def test_client_that_does_not_read_gets_every_answer_in_order() -> None:
    big = b"x" * (256 * 1024)

    async def large(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, request.path + big)

    server = await serve(large, "127.0.0.1", 0, ServerSettings())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        count = 80  # more than max_pipelined, far more than the transport's write buffer
        writer.write(b"".join(b"GET /%03d HTTP/1.1\r\nhost: x\r\n\r\n" % i for i in range(count)))
        await writer.drain()
        for i in range(count):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            assert body.startswith(b"/%03d" % i)
        writer.close()
    finally:
        await server.close()
