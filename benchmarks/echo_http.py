"""The HTTP ceiling: a raw ASGI app on uvicorn (uvloop, httptools) that answers V2 infer
requests with a fixed one-row reply after reading the whole body — no framework, no model.

Run: ``python -m benchmarks.echo_http --port-file FILE``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from benchmarks.httpserve import serve_asgi
from benchmarks.messages import echo_json_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def make_app(model: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Build the echo ASGI app."""
    body = echo_json_response(model)
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    reply = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(start)
        await send(reply)

    return app


def main() -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--model", default="reference")
    args = parser.parse_args()
    serve_asgi(make_app(args.model), args.port_file)


if __name__ == "__main__":
    main()
