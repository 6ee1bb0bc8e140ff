"""The app-wide guard and the ``principal`` dependency.

Install :func:`authorize` on the Litestar app (``guards=[authorize]``): every handler whose
method changes state (anything but GET, HEAD, OPTIONS) then needs a valid token whose role
grants the handler's ``opt["permission"]`` (a :class:`Permission`; default ``WRITE``). A read
handler may ask for a permission too (``opt={"permission": Permission.ADMIN}``). A token that
is presented but invalid is refused everywhere, reads included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from control_plane.security.middleware import INVALID_TOKEN
from control_plane.security.models import Permission, Principal
from modelyard.errors import PermissionDenied, Unauthenticated

if TYPE_CHECKING:
    from litestar import Request
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PERMISSION_KEY = "permission"


def required_permission(method: str, opt: dict[str, Any]) -> Permission | None:
    """The permission a handler needs: its ``opt`` entry, else WRITE for mutating methods.

    >>> required_permission("POST", {}), required_permission("GET", {})
    (<Permission.WRITE: 'write'>, None)
    """
    permission = opt.get(PERMISSION_KEY)
    if isinstance(permission, Permission):
        return permission
    return None if method.upper() in SAFE_METHODS else Permission.WRITE


def check(principal: Principal | None, permission: Permission) -> Principal:
    """``principal`` if it holds ``permission``.

    Raises:
        Unauthenticated: no principal (no valid token).
        PermissionDenied: the principal's role lacks ``permission``.
    """
    if principal is None:
        raise Unauthenticated(
            "this operation needs an API token (header 'Authorization: Bearer <token>')"
        )
    if not principal.can(permission):
        raise PermissionDenied(
            f"principal {principal.name!r} with role {principal.role.value!r} "
            f"lacks the {permission.value!r} permission"
        )
    return principal


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Litestar guard: refuse mutating (or permission-marked) handlers without the right role.

    Raises:
        Unauthenticated: missing or invalid token.
        PermissionDenied: the token's role lacks the permission.
    """
    if connection.scope.get("auth") == INVALID_TOKEN:
        raise Unauthenticated("invalid or revoked API token")
    method = str(connection.scope.get("method", "GET"))
    permission = required_permission(method, dict(handler.opt))
    if permission is not None:
        check(connection.scope.get("user"), permission)


def current_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency ``principal``: the authenticated caller.

    Raises:
        Unauthenticated: the request carried no valid token.
    """
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated(
            "this operation needs an API token (header 'Authorization: Bearer <token>')"
        )
    return user
