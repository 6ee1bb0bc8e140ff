"""The one way every ``modelyard`` command reaches the control plane: its REST API.

With ``--url`` a command talks to a running control plane. Without it, the same REST request
goes to the control-plane application built in this process over the configured (local) store,
through an in-memory ASGI transport — so both ways run the same guards, rules and audit log.
A token (``--token`` or ``control_plane.token`` / ``MODELYARD_CONTROL_PLANE_TOKEN``) is needed
for every change, locally too; the first local start writes an admin token to
``control_plane.admin_token_file``.

A command makes one call with :func:`request`, or several on one client (a job followed until
it ends) with :func:`run_with_client`; both take the shared ``URL_OPTION`` / ``TOKEN_OPTION``.

Error answers are decoded in one place (:func:`call`): the body ``{"error", "code"}`` becomes a
:class:`RemoteError` carrying the server's message and code, so the root group prints one line
and exits 2 exactly as for a local domain error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import click
import httpx
import msgspec

from modelyard.commands import settings_from_context
from modelyard.errors import ErrorCode, ModelyardError
from modelyard.settings import Settings

T = TypeVar("T")

URL_OPTION = click.option(
    "--url", default=None, metavar="URL", help="Control plane base URL (default: local store)."
)
# NOTE: httpx logs every request at INFO; a command prints its answer, not its transport.
logging.getLogger("httpx").setLevel(logging.WARNING)

TOKEN_OPTION = click.option(
    "--token", default=None, help="API token (default: control_plane.token)."
)


class RemoteError(ModelyardError):
    """An error answer of the control plane, with the code it carried."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.code = code


@asynccontextmanager
async def control_plane_client(
    settings: Settings, url: str | None, token: str | None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``url``, or for the in-process application over the local store."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if url:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
            yield client
        return
    from control_plane.app import ControlPlaneServices, create_app

    services = await ControlPlaneServices.open(settings)
    if services.admin_token_path is not None:
        click.echo(f"first start: admin token written to {services.admin_token_path}", err=True)
    try:
        transport = httpx.ASGITransport(app=create_app(services))  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="http://local", headers=headers, timeout=120
        ) as client:
            yield client
    finally:
        await services.close()


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """Send one request and return the decoded JSON answer.

    Raises:
        RemoteError: the control plane answered with an error (its message and code), or
            could not be reached (UNAVAILABLE).
    """
    query = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        answer = await client.request(method, path, json=body, params=query)
    except httpx.TransportError as error:
        raise RemoteError(
            f"control plane at {client.base_url} is unreachable: {error}", ErrorCode.UNAVAILABLE
        ) from None
    if answer.is_success:
        return answer.json() if answer.content else None
    try:
        decoded = answer.json()
        message, code = str(decoded["error"]), str(decoded.get("code", "internal"))
    except (ValueError, KeyError, TypeError):
        message, code = answer.text or answer.reason_phrase, "internal"
    known = {c.value: c for c in ErrorCode}
    raise RemoteError(message, known.get(code, _code_of_status(answer.status_code)))


def run_with_client(
    url: str | None, token: str | None, action: Callable[[httpx.AsyncClient], Awaitable[T]]
) -> T:
    """Run ``action`` on a :func:`control_plane_client` from a synchronous command, with the
    token of the settings by default: for commands that make several calls on one client
    (a job followed until it ends)."""
    settings = settings_from_context()

    async def run() -> T:
        async with control_plane_client(
            settings, url, token or settings.control_plane.token
        ) as client:
            return await action(client)

    return asyncio.run(run())


def request(
    url: str | None,
    token: str | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """:func:`call` from a synchronous command, with the token of the settings by default."""
    return run_with_client(
        url, token, lambda client: call(client, method, path, body=body, params=params)
    )


def _code_of_status(status: int) -> ErrorCode:
    return {401: ErrorCode.UNAUTHENTICATED, 403: ErrorCode.PERMISSION_DENIED}.get(
        status, ErrorCode.INTERNAL
    )


def echo_json(value: Any) -> None:
    """Print an answer (decoded JSON or msgspec Structs) as indented JSON."""
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=False))
