"""Real receivers on 127.0.0.1:0 for notification tests: an SMTP server (aiosmtpd's protocol
on our event loop) and a minimal HTTP/1.1 server standing in for Slack and webhooks."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class SmtpReceiver:
    """aiosmtpd on a free port; refuses the first ``fail_first`` messages with 451."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refused < self.fail_first:
            self.refused += 1
            return "451 4.3.0 try again later"
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)  # the default policy builds EmailMessage
        self.messages.append(message)
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Answers 500 to the first ``fail_first`` requests, then 200; records every request."""

    fail_first: int = 0
    answer: Callable[[Request], tuple[int, bytes]] | None = None
    """When set, answers every request that is not failed on purpose."""
    hold: asyncio.Event | None = None
    """When given, each answer waits until this event is set (a delivery kept in flight)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once a request has been recorded."""
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        request = Request(path, headers, body)
        self.requests.append(request)
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        failing = len(self.requests) <= self.fail_first
        status = b"500 Internal Server Error" if failing else b"200 OK"
        answer = b"busy" if failing else b"ok"
        if not failing and self.answer is not None:
            code, answer = self.answer(request)
            status = f"{code} X".encode()
        writer.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Length: "
            + str(len(answer)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + answer
        )
        await writer.drain()
        writer.close()
