"""Principals, roles and the permissions each role grants.

Roles form three chains: viewer < developer < admin, viewer < approver < admin and
viewer < auditor < admin. A developer registers, edits cards and moves versions between None,
Staging and Archived; an approver reviews model cards and may promote to Production; an
auditor may read the audit log and the token metadata (who holds which role, issued by whom;
never a secret), which other roles may not; an admin may do everything, including managing
tokens.

>>> grants(Role.DEVELOPER, Permission.WRITE), grants(Role.DEVELOPER, Permission.REVIEW)
(True, False)
>>> sorted(p.value for p in ROLE_PERMISSIONS[Role.APPROVER])
['promote', 'read', 'review']
"""

from __future__ import annotations

import datetime as dt
import enum

import msgspec

from modelyard.enums import Role
from modelyard.models import InputValue, Name, Text


class Permission(enum.Enum):
    """What a handler or a service rule requires of the caller."""

    READ = "read"
    WRITE = "write"
    PROMOTE = "promote"
    REVIEW = "review"
    AUDIT = "audit"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.DEVELOPER: frozenset({Permission.READ, Permission.WRITE}),
    Role.APPROVER: frozenset({Permission.READ, Permission.REVIEW, Permission.PROMOTE}),
    Role.AUDITOR: frozenset({Permission.READ, Permission.AUDIT}),
    Role.ADMIN: frozenset(Permission),
}


def grants(role: Role, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission``."""
    return permission in ROLE_PERMISSIONS[role]


class Principal(msgspec.Struct, kw_only=True, frozen=True):
    """The authenticated caller.

    Attributes:
        name: who (recorded as the actor in the audit log).
        role: what they may do.
        token_id: the token they presented.
    """

    name: str
    role: Role
    token_id: str

    def can(self, permission: Permission) -> bool:
        """Whether this principal's role holds ``permission``."""
        return grants(self.role, permission)


class TokenCreate(InputValue, kw_only=True, frozen=True):
    """Body of ``POST /v1/tokens``: the principal the token speaks for and its role."""

    principal: Name
    role: Role
    description: Text = ""


class TokenInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A stored token, without its secret.

    Attributes:
        id: token id (not secret).
        principal: who the token speaks for.
        role: the token's role.
        created_at: when it was issued (UTC).
        created_by: the admin who issued it (``bootstrap`` for the first admin token).
        revoked: revoked tokens authenticate nobody.
        description: free text.
    """

    id: str
    principal: str
    role: Role
    created_at: dt.datetime
    created_by: str
    revoked: bool = False
    description: str = ""


class IssuedToken(msgspec.Struct, kw_only=True, frozen=True):
    """A newly issued token: the secret is shown once, here, and never stored."""

    token: str
    info: TokenInfo
