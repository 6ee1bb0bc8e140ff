"""Resolve the ``Authorization: Bearer <token>`` header of every request to a principal.

The middleware never refuses a request itself: it sets ``scope["user"]`` (a
:class:`Principal`, or None when no token was sent) and marks a presented-but-invalid token,
and the app-wide guard (:func:`control_plane.security.guards.authorize`) decides per handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.middleware import ASGIMiddleware

from modelyard.errors import Unauthenticated

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from control_plane.security.tokens import TokenService

INVALID_TOKEN = "invalid_token"
"""``scope["auth"]`` after a token was presented that authenticates nobody."""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` header value, if it is a bearer token.

    >>> bearer_token("Bearer my_abc"), bearer_token("Basic x"), bearer_token(None)
    ('my_abc', None, None)
    """
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class PrincipalMiddleware(ASGIMiddleware):
    """Sets ``request.user`` from the bearer token.

    Args:
        tokens: the token service that checks presented tokens.
    """

    def __init__(self, tokens: TokenService) -> None:
        self._tokens = tokens

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Authenticate, then pass the request on."""
        scope["user"] = None
        scope["auth"] = None
        headers = dict(scope.get("headers", []))
        raw = headers.get(b"authorization")
        token = bearer_token(raw.decode("latin-1") if raw else None)
        if raw is not None and token is None:
            scope["auth"] = INVALID_TOKEN
        elif token is not None:
            try:
                scope["user"] = await self._tokens.authenticate(token)
            except Unauthenticated:
                scope["auth"] = INVALID_TOKEN
        await next_app(scope, receive, send)
