"""Control-plane security: API tokens (stored hashed) with roles, and the guard that checks them.

A token is ``my_<random>``; only its SHA-256 is stored, so a leaked database yields no usable
token. :class:`~control_plane.security.middleware.PrincipalMiddleware` resolves the
``Authorization: Bearer`` header of every request to a :class:`Principal` (``request.user``);
:func:`~control_plane.security.guards.authorize` — installed app-wide — refuses every
mutating handler (any method but GET/HEAD/OPTIONS) without a valid token (401) or without the
permission the handler names in ``opt={"permission": ...}`` (403; default ``write``).
"""

from __future__ import annotations

from control_plane.security.guards import authorize, current_principal
from control_plane.security.middleware import PrincipalMiddleware
from control_plane.security.models import Permission, Principal, grants
from control_plane.security.tokens import TokenService

__all__ = [
    "Permission",
    "Principal",
    "PrincipalMiddleware",
    "TokenService",
    "authorize",
    "current_principal",
    "grants",
]
