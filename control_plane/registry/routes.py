"""``/v1/models`` and ``/v1/lineage``: the registry over REST (thin: decode, delegate, encode).

Mutating handlers are guarded app-wide (:func:`control_plane.security.guards.authorize`):
``write`` by default, ``review`` for card reviews; the service re-checks the rules that depend
on the data (Production needs ``promote``; a reviewer must not be the registrant).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from control_plane.params import NamePath, Offset, TextQuery, VersionPath
from control_plane.registry.models import (
    CardEdit,
    CardReviewRequest,
    CardRevision,
    CardSubmission,
    FeatureUsage,
    ModelRegistration,
    ModelSummary,
    StageTransition,
)
from control_plane.registry.service import RegistryService
from control_plane.security.models import Permission, Principal
from modelyard.enums import ModelStage
from modelyard.models import ModelLineage, RegisteredModel

VERSION = "/{name:str}/versions/{version:int}"


class ModelController(Controller):
    """Model versions, their stages, cards, reviews and lineage."""

    path = "/v1/models"
    tags = ["models"]

    @get("/")
    async def list_models(self, registry: NamedDependency[RegistryService]) -> list[ModelSummary]:
        """Every model name with its latest and Production version."""
        return await registry.summaries()

    @get("/versions")
    async def search_versions(
        self,
        registry: NamedDependency[RegistryService],
        name: TextQuery = None,
        stage: FromQuery[ModelStage | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 1000,
        offset: Offset = 0,
    ) -> list[RegisteredModel]:
        """Versions of every model, filtered by name and stage."""
        return await registry.list_versions(name=name, stage=stage, limit=limit, offset=offset)

    @post("/{name:str}/versions", status_code=201)
    async def register(
        self,
        name: NamePath,
        data: JSONBody[ModelRegistration],
        registry: NamedDependency[RegistryService],
        principal: NamedDependency[Principal],
    ) -> RegisteredModel:
        """Register version n+1 of a model (ONNX as base64, card, lineage)."""
        return await registry.register(name, data, principal)

    @get("/{name:str}/versions")
    async def list_versions(
        self,
        name: NamePath,
        registry: NamedDependency[RegistryService],
        stage: FromQuery[ModelStage | None] = None,
    ) -> list[RegisteredModel]:
        """Versions of one model, optionally in one stage."""
        return await registry.list_versions(name=name, stage=stage)

    @get("/{name:str}/latest")
    async def latest(
        self,
        name: NamePath,
        registry: NamedDependency[RegistryService],
        stage: FromQuery[ModelStage | None] = None,
    ) -> RegisteredModel:
        """The highest version (in a stage when given)."""
        return await registry.latest(name, stage)

    @get("/{name:str}/production")
    async def production(
        self, name: NamePath, registry: NamedDependency[RegistryService]
    ) -> RegisteredModel:
        """The Production version."""
        return await registry.production(name)

    @get(VERSION)
    async def get_version(
        self,
        name: NamePath,
        version: VersionPath,
        registry: NamedDependency[RegistryService],
    ) -> RegisteredModel:
        """One version with its current card."""
        return await registry.get(name, version)

    # Any valid token passes the guard; the service checks write (or promote for Production).
    @post(VERSION + "/transitions", status_code=200, opt={"permission": Permission.READ})
    async def transition(
        self,
        name: NamePath,
        version: VersionPath,
        data: JSONBody[StageTransition],
        registry: NamedDependency[RegistryService],
        principal: NamedDependency[Principal],
    ) -> RegisteredModel:
        """Move a version to another stage (Production: approver/admin, approved card)."""
        return await registry.stages.transition(name, version, data.stage, principal, data.reason)

    @post("/{name:str}/publish", status_code=200, opt={"permission": Permission.ADMIN})
    async def republish(
        self, name: NamePath, registry: NamedDependency[RegistryService]
    ) -> list[RegisteredModel]:
        """Rewrite the model's repository folder from the registry (repair; admin)."""
        await registry.stages.republish(name)
        return await registry.list_versions(name=name)

    @get(VERSION + "/card")
    async def card(
        self,
        name: NamePath,
        version: VersionPath,
        registry: NamedDependency[RegistryService],
    ) -> CardRevision:
        """The current card revision with its reviews."""
        return await registry.cards.current(name, version)

    @get(VERSION + "/card/revisions")
    async def card_revisions(
        self,
        name: NamePath,
        version: VersionPath,
        registry: NamedDependency[RegistryService],
    ) -> list[CardRevision]:
        """Every card revision, oldest first."""
        return await registry.card_history(name, version)

    @put(VERSION + "/card")
    async def edit_card(
        self,
        name: NamePath,
        version: VersionPath,
        data: JSONBody[CardEdit],
        registry: NamedDependency[RegistryService],
        principal: NamedDependency[Principal],
    ) -> CardRevision:
        """Write a new card revision (draft)."""
        return await registry.cards.edit(name, version, data.card, principal, data.reason)

    @post(VERSION + "/card/submit", status_code=200)
    async def submit_card(
        self,
        name: NamePath,
        version: VersionPath,
        data: JSONBody[CardSubmission],
        registry: NamedDependency[RegistryService],
        principal: NamedDependency[Principal],
    ) -> CardRevision:
        """Ask for review of the current revision."""
        return await registry.cards.submit(name, version, principal, data.reason)

    @post(VERSION + "/card/reviews", status_code=200, opt={"permission": Permission.REVIEW})
    async def review_card(
        self,
        name: NamePath,
        version: VersionPath,
        data: JSONBody[CardReviewRequest],
        registry: NamedDependency[RegistryService],
        principal: NamedDependency[Principal],
    ) -> CardRevision:
        """Approve or reject the pending revision (approver/admin, not the registrant)."""
        return await registry.cards.review(
            name, version, data.decision, principal, reason=data.reason, revision=data.revision
        )

    @get(VERSION + "/lineage")
    async def lineage(
        self,
        name: NamePath,
        version: VersionPath,
        registry: NamedDependency[RegistryService],
    ) -> ModelLineage:
        """What the version was built from."""
        return await registry.lineage(name, version)


class LineageController(Controller):
    """Lineage queried from the feature side."""

    path = "/v1/lineage"
    tags = ["models"]

    @get("/features/{feature:str}/{feature_version:int}")
    async def versions_using_feature(
        self,
        feature: NamePath,
        feature_version: VersionPath,
        registry: NamedDependency[RegistryService],
    ) -> FeatureUsage:
        """Which model versions were built from this feature version."""
        return await registry.versions_using_feature(feature, feature_version)
