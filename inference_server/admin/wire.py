"""The messages between the supervisor and its workers, and their framing on the socket.

One Unix stream socket per worker; each frame is a 4-byte big-endian length and a msgpack
message (a tagged msgspec Struct). Worker -> supervisor: :class:`Hello` (on connect),
:class:`Ready` (listening), :class:`Call` (fan this operation out), :class:`Done` (my answer
to a :class:`Prepare` / :class:`Apply`). Supervisor -> worker: :class:`Snapshot` (the desired
state, first message after ``Hello``), :class:`Prepare`, :class:`Apply`, :class:`Answer`
(every worker's outcome of a ``Call``).

>>> frame = frame_of(Hello(worker=1, pid=7))
>>> int.from_bytes(frame[:4], "big") == len(frame) - 4, decode_message(frame[4:])
(True, Hello(worker=1, pid=7))
"""

from __future__ import annotations

import asyncio
from typing import Final, TypeAlias

import msgspec

from inference_server.admin.fanout import WorkerOutcome

MAX_FRAME: Final = 512 * 1024 * 1024
"""Largest message (merged sketches can be big); a larger one is a protocol error."""


class _Message(msgspec.Struct, kw_only=True, frozen=True, tag=True):
    """Base of the channel's messages."""


class Entry(msgspec.Struct, kw_only=True, frozen=True):
    """One kept operation of the desired state: replayed by a (re)starting worker."""

    op: str
    payload: bytes


class Hello(_Message, kw_only=True, frozen=True):
    worker: int
    pid: int


class Ready(_Message, kw_only=True, frozen=True):
    worker: int


class Call(_Message, kw_only=True, frozen=True):
    id: int
    op: str
    payload: bytes


class Done(_Message, kw_only=True, frozen=True):
    id: int
    outcome: WorkerOutcome
    payload: bytes = b""
    state_key: str | None = None


class Snapshot(_Message, kw_only=True, frozen=True):
    entries: list[Entry]


class Prepare(_Message, kw_only=True, frozen=True):
    id: int
    op: str
    payload: bytes


class Apply(_Message, kw_only=True, frozen=True):
    id: int
    op: str
    payload: bytes


class Answer(_Message, kw_only=True, frozen=True):
    id: int
    outcomes: list[WorkerOutcome]
    prepared: bool = True


Message: TypeAlias = Hello | Ready | Call | Done | Snapshot | Prepare | Apply | Answer

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def frame_of(message: Message) -> bytes:
    """Length prefix plus msgpack body."""
    body = _encoder.encode(message)
    return len(body).to_bytes(4, "big") + body


def decode_message(body: bytes) -> Message:
    """One frame's body as a message."""
    message: Message = _decoder.decode(body)
    return message


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next message, or None when the peer closed the connection.

    Raises:
        ValueError: a frame beyond :data:`MAX_FRAME` (the channel is broken).
        msgspec.DecodeError: a malformed frame.
    """
    try:
        head = await reader.readexactly(4)
        size = int.from_bytes(head, "big")
        if size > MAX_FRAME:
            raise ValueError(f"admin channel frame of {size} bytes exceeds {MAX_FRAME}")
        return decode_message(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


async def send(writer: asyncio.StreamWriter, message: Message) -> None:
    """Write one message and wait until the transport took it."""
    writer.write(frame_of(message))
    await writer.drain()
