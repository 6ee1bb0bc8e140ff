"""``/v1/tokens``: issue, list and revoke API tokens (admin only), and ``whoami``."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from control_plane.security.models import IssuedToken, Permission, Principal, TokenCreate, TokenInfo
from control_plane.security.tokens import TokenService

ADMIN_ONLY = {"permission": Permission.ADMIN}


class TokenController(Controller):
    """API tokens. The secret of a token appears once, in the answer that issues it."""

    path = "/v1/tokens"
    tags = ["security"]

    @post("/", opt=ADMIN_ONLY)
    async def issue(
        self,
        data: JSONBody[TokenCreate],
        token_service: NamedDependency[TokenService],
        principal: NamedDependency[Principal],
    ) -> IssuedToken:
        """Issue a token for a principal with a role (admin)."""
        return await token_service.issue(
            data.principal, data.role, actor=principal.name, description=data.description
        )

    @get("/", opt=ADMIN_ONLY)
    async def list_tokens(self, token_service: NamedDependency[TokenService]) -> list[TokenInfo]:
        """Every token, without secrets (admin)."""
        return await token_service.list()

    @delete("/{token_id:str}", opt=ADMIN_ONLY, status_code=200)
    async def revoke(
        self,
        token_id: FromPath[str],
        token_service: NamedDependency[TokenService],
        principal: NamedDependency[Principal],
    ) -> TokenInfo:
        """Revoke a token (admin)."""
        return await token_service.revoke(token_id, actor=principal.name)

    @get("/me", opt={"permission": Permission.READ})
    async def whoami(self, principal: NamedDependency[Principal]) -> Principal:
        """The principal the presented token speaks for."""
        return principal
