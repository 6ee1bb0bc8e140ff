"""``/v1/tokens``: issue, list and revoke API tokens (admin only), and ``whoami``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency

from control_plane.params import KeyPath
from control_plane.security.models import IssuedToken, Permission, Principal, TokenCreate, TokenInfo
from control_plane.security.tokens import TokenService
from modelyard.errors import InvalidArgument

ADMIN_ONLY = {"permission": Permission.ADMIN}
AUDITORS = {"permission": Permission.AUDIT}
"""Who holds which token is audit material: admins and auditors read it."""


_decode_token_create = msgspec.json.Decoder(TokenCreate).decode


def decode_token_create(body: bytes) -> TokenCreate:
    """Decode the body of ``POST /v1/tokens`` here rather than as a Litestar ``data`` field.

    Litestar reports a body error whose key is also a dependency name as a bare 500, and the
    body's ``principal`` field shares its name with the app-wide ``principal`` dependency: an
    invalid principal name answered 500 with nothing logged.

    Raises:
        InvalidArgument: the body is not JSON or does not match :class:`TokenCreate`.
    """
    try:
        return _decode_token_create(body)
    except msgspec.ValidationError as exc:
        raise InvalidArgument(f"invalid token request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed JSON: {exc}") from None


class TokenController(Controller):
    """API tokens. The secret of a token appears once, in the answer that issues it."""

    path = "/v1/tokens"
    tags = ["security"]

    @post("/", opt=ADMIN_ONLY)
    async def issue(
        self,
        request: Request[Any, Any, Any],
        token_service: NamedDependency[TokenService],
        principal: NamedDependency[Principal],
    ) -> IssuedToken:
        """Issue a token for a principal with a role (admin); body :class:`TokenCreate`."""
        data = decode_token_create(await request.body())
        return await token_service.issue(
            data.principal, data.role, actor=principal.name, description=data.description
        )

    @get("/", opt=AUDITORS)
    async def list_tokens(self, token_service: NamedDependency[TokenService]) -> list[TokenInfo]:
        """Every token, without secrets (admin, auditor)."""
        return await token_service.list()

    @delete("/{token_id:str}", opt=ADMIN_ONLY, status_code=200)
    async def revoke(
        self,
        token_id: KeyPath,
        token_service: NamedDependency[TokenService],
        principal: NamedDependency[Principal],
    ) -> TokenInfo:
        """Revoke a token (admin; 409 when it is the last active admin token)."""
        return await token_service.revoke(token_id, actor=principal.name)

    @get("/me", opt={"permission": Permission.READ})
    async def whoami(self, principal: NamedDependency[Principal]) -> Principal:
        """The principal the presented token speaks for."""
        return principal
