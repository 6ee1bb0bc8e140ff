"""REST access to the feature store: a thin controller over :class:`FeatureService`.

=========================================  ======  =============================================
``POST /v1/features``                      201     create (version 1); 409 if the name exists
``GET /v1/features``                       200     list latest versions (filters, pagination)
``GET /v1/features/{name}``                200     latest version, or ``?version=n`` exactly
``PUT /v1/features/{name}``                200     write the next version
``GET /v1/features/{name}/versions``       200     every version, oldest first
``DELETE /v1/features/{name}``             200     deprecate (versions stay readable)
=========================================  ======  =============================================

Errors (JSON ``{"error", "code"}`` via ``control_plane/errors.py``): 404 unknown feature or
version, 409 duplicate create (or a new version of a deprecated feature), 422 invalid
definition -- including a body that is not JSON -- naming every missing required field.

Definitions are decoded by :func:`~control_plane.features.models.decode_definition` through a
DTO, so the OpenAPI schema still shows the shape while the error names *all* missing fields.
The acting principal is read from ``scope["user"]`` (set by the authentication middleware;
an object with a ``name`` or a string), ``anonymous`` without one.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.dto import MsgspecDTO
from litestar.params import FromQuery, JSONBody, QueryParameter

from control_plane.features.models import (
    FeatureDefinition,
    FeaturePage,
    FeatureUpdate,
    decode_definition,
)
from control_plane.features.service import MAX_PAGE, FeatureService
from control_plane.params import NamePath, Offset, TextQuery, VersionQuery
from modelyard.models import Feature

ANONYMOUS = "anonymous"


class FeatureDefinitionDTO(MsgspecDTO[FeatureDefinition]):
    """Decodes a create body, naming every missing required field at once."""

    def decode_bytes(self, value: bytes) -> Any:
        return decode_definition(value, FeatureDefinition)


class FeatureUpdateDTO(MsgspecDTO[FeatureUpdate]):
    """Decodes an update body, naming every missing required field at once."""

    def decode_bytes(self, value: bytes) -> Any:
        return decode_definition(value, FeatureUpdate)


def actor_of(request: Request[Any, Any, Any]) -> str:
    """The principal making ``request``, as recorded in ``created_by`` and the audit log."""
    user = request.scope.get("user")
    name = getattr(user, "name", user)
    return name if isinstance(name, str) and name.strip() else ANONYMOUS


class FeatureController(Controller):
    """``/v1/features``: versioned feature definitions."""

    path = "/v1/features"
    tags = ["features"]

    @post("/", dto=FeatureDefinitionDTO, return_dto=None, status_code=201)
    async def create_feature(
        self,
        request: Request[Any, Any, Any],
        feature_service: NamedDependency[FeatureService],
        data: JSONBody[FeatureDefinition],
    ) -> Feature:
        """Create a feature: a fresh id and version 1."""
        return await feature_service.create_feature(data, actor=actor_of(request))

    @get("/")
    async def list_features(
        self,
        feature_service: NamedDependency[FeatureService],
        entity: TextQuery = None,
        tag: TextQuery = None,
        owner: TextQuery = None,
        prefix: TextQuery = None,
        include_deprecated: FromQuery[bool] = False,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
        offset: Offset = 0,
    ) -> FeaturePage:
        """The latest version of each matching feature, by name; deprecated ones hidden."""
        return await feature_service.list_features(
            entity=entity,
            tag=tag,
            owner=owner,
            prefix=prefix,
            include_deprecated=include_deprecated,
            limit=limit,
            offset=offset,
        )

    @get("/{name:str}")
    async def get_feature(
        self,
        name: NamePath,
        feature_service: NamedDependency[FeatureService],
        version: VersionQuery = None,
    ) -> Feature:
        """The latest version of a feature, or exactly ``?version=n``."""
        return await feature_service.get_feature(name, version)

    @put("/{name:str}", dto=FeatureUpdateDTO, return_dto=None)
    async def update_feature(
        self,
        request: Request[Any, Any, Any],
        name: NamePath,
        feature_service: NamedDependency[FeatureService],
        data: JSONBody[FeatureUpdate],
    ) -> Feature:
        """Write the next version of a feature (the complete definition)."""
        return await feature_service.update_feature(name, data, actor=actor_of(request))

    @get("/{name:str}/versions")
    async def get_history(
        self, name: NamePath, feature_service: NamedDependency[FeatureService]
    ) -> list[Feature]:
        """Every version of a feature, oldest first."""
        return await feature_service.get_history(name)

    @delete("/{name:str}", status_code=200)
    async def deprecate_feature(
        self,
        request: Request[Any, Any, Any],
        name: NamePath,
        feature_service: NamedDependency[FeatureService],
    ) -> Feature:
        """Deprecate a feature: hidden from listings, every version still readable."""
        return await feature_service.deprecate_feature(name, actor=actor_of(request))


__all__ = ["ANONYMOUS", "FeatureController", "actor_of"]
