"""REST access to the audit log (read-only; admins and auditors, ``Permission.AUDIT``).

The log names who did what to which entity; like the token metadata it is governance
material, so a plain ``read`` token does not open it (docs/operations.md).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from control_plane.params import Offset, TextQuery
from control_plane.security.models import Permission
from modelyard.storage.audit import AuditEvent, AuditLog


class AuditController(Controller):
    """``GET /v1/audit``: who changed what, when, from which state to which."""

    path = "/v1/audit"
    tags = ["audit"]

    @get("/", opt={"permission": Permission.AUDIT})
    async def list_events(
        self,
        audit_log: NamedDependency[AuditLog],
        entity_kind: TextQuery = None,
        entity: TextQuery = None,
        actor: TextQuery = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        offset: Offset = 0,
    ) -> list[AuditEvent]:
        """Audit events, oldest first, filtered by entity kind, entity and actor."""
        return await audit_log.list(
            entity_kind=entity_kind, entity=entity, actor=actor, limit=limit, offset=offset
        )
