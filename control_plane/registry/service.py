"""The registry's rules: registration and queries (cards and stages in their own modules).

``register`` validates everything before it writes (name, card completeness, lineage, the ONNX
graph), stores the artifact by content hash, then in ONE transaction allocates the version,
writes the version row, card revision 1 (draft), the lineage features and the audit event.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec
import onnx
from google.protobuf.message import DecodeError

from control_plane.registry.card_rules import require_complete
from control_plane.registry.cards import CardService
from control_plane.registry.models import CardRevision, FeatureUsage, ModelRegistration
from control_plane.registry.naming import check_name
from control_plane.registry.stages import StageService
from converters.graph import signature_of as graph_signature
from modelyard.enums import CardStatus, ModelStage
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.models import ModelLineage, ModelSignature, RegisteredModel
from modelyard.sketches import build_reference_profile
from modelyard.storage.audit import AuditEvent

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.registry.context import ReferenceSink, RegistryContext
    from control_plane.registry.models import ModelSummary
    from control_plane.security.models import Principal
    from converters import ConversionResult, FidelityReport
    from modelyard.models import ModelCard
    from modelyard.sketches import ReferenceProfile


def check_lineage(lineage: ModelLineage) -> ModelLineage:
    """``lineage`` if run id, dataset URI and hash, and code version are all present.

    Raises:
        InvalidArgument: naming every missing field.
    """
    missing = [
        field
        for field, value in (
            ("mlflow_run_id", lineage.mlflow_run_id),
            ("training_dataset.uri", lineage.training_dataset.uri),
            ("training_dataset.sha256", lineage.training_dataset.sha256),
            ("code_version", lineage.code_version),
        )
        if not value.strip()
    ]
    if missing:
        raise InvalidArgument(f"incomplete lineage: {', '.join(missing)} required")
    return lineage


def signature_of(onnx_bytes: bytes) -> ModelSignature:
    """The signature of an ONNX graph (feature names from ``modelyard.feature_names``).

    Raises:
        InvalidArgument: the bytes are not a valid ONNX model.
    """
    try:
        model = onnx.load_model_from_string(onnx_bytes)
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError) as error:
        raise InvalidArgument(f"the artifact is not a valid ONNX model: {error}") from None
    props = {p.key: p.value for p in model.metadata_props}
    try:
        names = tuple(msgspec.json.decode(props.get("modelyard.feature_names", "[]")))
    except msgspec.DecodeError:
        names = ()
    return graph_signature(model, tuple(str(n) for n in names))


def fidelity_figures(report: FidelityReport) -> dict[str, float]:
    """The figures of a conversion's fidelity report that lineage records.

    The whole report (reasons, features named) travels in the stored ONNX artifact's
    ``modelyard.fidelity`` metadata; lineage keeps the numbers: the total, its input and
    graph shares, and the input precision in bits (32 or 64).
    """
    figures = {
        "max_abs_diff": report.max_abs_diff,
        "mean_abs_diff": report.mean_abs_diff,
        "max_rel_diff": report.max_rel_diff,
        "input_max_abs_diff": report.input_max_abs_diff,
        "graph_max_abs_diff": report.graph_max_abs_diff,
        "input_precision_bits": 64.0 if report.precision == "float64" else 32.0,
    }
    if report.label_agreement is not None:
        figures["label_agreement"] = report.label_agreement
    return figures


class RegistryService:
    """Register and query model versions; ``cards`` and ``stages`` hold the other rules.

    Args:
        context: the shared dependencies.
    """

    def __init__(self, context: RegistryContext) -> None:
        self._ctx = context
        self.cards = CardService(context)
        self.stages = StageService(context)

    async def register(
        self, name: str, registration: ModelRegistration, principal: Principal
    ) -> RegisteredModel:
        """Register version n+1 of ``name`` (stage None, card revision 1 in draft).

        Raises:
            InvalidArgument: bad name, no or incomplete card, incomplete lineage, unknown
                lineage features, or bytes that are not an ONNX model.
        """
        check_name(name)
        profile = self._reference_of(registration)
        card = require_complete(registration.card, f"registering {name!r}")
        lineage = check_lineage(registration.lineage)
        lineage = msgspec.structs.replace(
            lineage, fidelity=lineage.fidelity | registration.fidelity
        )
        derived = signature_of(registration.onnx)  # also refuses bytes that are not ONNX
        signature = registration.signature or derived
        await self._check_features(lineage)
        sha256 = await asyncio.to_thread(self._ctx.artifacts.put, registration.onnx)
        async with self._ctx.database.write() as conn:
            version = await self._ctx.store.allocate_version(conn, name)
            new = RegisteredModel(
                name=name,
                version=version,
                stage=ModelStage.NONE,
                onnx_sha256=sha256,
                signature=signature,
                card=card,
                card_revision=1,
                card_status=CardStatus.DRAFT,
                lineage=lineage,
                created_at=dt.datetime.now(dt.UTC),
                created_by=principal.name,
                description=registration.description,
                tags=registration.tags,
            )
            await self._insert(conn, new, principal)
            model = await self._ctx.store.get(conn, name, version)
        if self._ctx.mirror is not None:
            await self._ctx.mirror.register(model, self._ctx.artifacts.path(sha256).as_uri())
        if profile is not None and self._ctx.references is not None:
            await self._ctx.references.store_reference(name, model.version, profile)
        return model

    def use_references(self, sink: ReferenceSink) -> None:
        """Send the reference profiles of registration samples to ``sink``."""
        self._ctx.references = sink

    def _reference_of(self, registration: ModelRegistration) -> ReferenceProfile | None:
        """The profile of the registration sample, built before anything is stored.

        Raises:
            InvalidArgument: a malformed sample.
            FailedPrecondition: a sample but no monitoring to keep its profile.
        """
        if registration.reference_sample is None:
            return None
        if self._ctx.references is None:
            raise FailedPrecondition("reference samples need the monitoring feature")
        if not registration.reference_sample:
            raise InvalidArgument("reference_sample needs at least one column")
        return build_reference_profile(
            registration.reference_sample, score=registration.reference_score
        )

    async def register_conversion(
        self,
        name: str,
        conversion: ConversionResult,
        card: ModelCard | None,
        lineage: ModelLineage,
        principal: Principal,
        *,
        description: str = "",
        reference_sample: dict[str, list[Any]] | None = None,
        reference_score: list[float] | None = None,
    ) -> RegisteredModel:
        """Register a :class:`converters.ConversionResult` (ONNX, signature, fidelity), with
        the training sample whose profile drift checks compare against, when given."""
        registration = ModelRegistration(
            onnx=conversion.onnx,
            signature=conversion.signature,
            card=card,
            lineage=lineage,
            fidelity=fidelity_figures(conversion.fidelity),
            description=description,
            reference_sample=reference_sample,
            reference_score=reference_score,
        )
        return await self.register(name, registration, principal)

    async def _insert(
        self,
        conn: AsyncConnection,
        model: RegisteredModel,
        principal: Principal,
    ) -> None:
        revision = CardService.new_revision(
            model.name, model.version, 1, model.card, principal, "registration"
        )
        await self._ctx.store.insert_version(conn, model)
        await self._ctx.store.insert_card(conn, revision)
        features = [(f.name, f.version) for f in model.lineage.features]
        await self._ctx.store.insert_features(conn, model.name, model.version, features)
        await self._ctx.audit_log.record(
            conn,
            AuditEvent(
                actor=principal.name,
                action="register",
                entity_kind="model_version",
                entity=f"{model.name}/{model.version}",
                to_state=model.stage.value,
                reason=f"sha256 {model.onnx_sha256}; card {model.card_status.value}",
                occurred_at=model.created_at,
            ),
        )

    async def _check_features(self, lineage: ModelLineage) -> None:
        if self._ctx.features is None or not lineage.features:
            return
        try:
            await self._ctx.features.resolve(lineage.features)
        except NotFound as error:
            raise InvalidArgument(f"lineage names an unknown feature: {error}") from None

    async def get(self, name: str, version: int) -> RegisteredModel:
        """One version with its current card.

        Raises:
            NotFound: no such version.
        """
        async with self._ctx.database.read() as conn:
            return await self._ctx.store.get(conn, name, version)

    async def list_versions(
        self,
        *,
        name: str | None = None,
        stage: ModelStage | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[RegisteredModel]:
        """Versions filtered by name and stage, ordered by name and version."""
        async with self._ctx.database.read() as conn:
            return await self._ctx.store.list_versions(
                conn, name=name, stage=stage, limit=limit, offset=offset
            )

    async def latest(self, name: str, stage: ModelStage | None = None) -> RegisteredModel:
        """The highest version of ``name`` (in ``stage`` when given).

        Raises:
            NotFound: the model has no (such) version.
        """
        versions = await self.list_versions(name=name, stage=stage)
        if not versions:
            what = f"model {name!r}" + (f" in stage {stage.value}" if stage else "")
            raise NotFound("version of", what)
        return versions[-1]

    async def onnx(self, model: RegisteredModel) -> bytes:
        """The ONNX bytes of a registered version, from the artifact store."""
        return await asyncio.to_thread(self._ctx.artifacts.path(model.onnx_sha256).read_bytes)

    async def production(self, name: str) -> RegisteredModel:
        """The Production version of ``name``.

        Raises:
            NotFound: the model has no Production version.
        """
        return await self.latest(name, ModelStage.PRODUCTION)

    async def summaries(self) -> list[ModelSummary]:
        """Every model name with its latest and Production versions."""
        async with self._ctx.database.read() as conn:
            return await self._ctx.store.summaries(conn)

    async def lineage(self, name: str, version: int) -> ModelLineage:
        """What a version was built from.

        Raises:
            NotFound: no such version.
        """
        return (await self.get(name, version)).lineage

    async def versions_using_feature(self, feature: str, feature_version: int) -> FeatureUsage:
        """Which model versions were built from ``feature`` version ``feature_version``."""
        async with self._ctx.database.read() as conn:
            refs = await self._ctx.store.versions_using_feature(conn, feature, feature_version)
        return FeatureUsage(feature=feature, feature_version=feature_version, models=tuple(refs))

    async def card_history(self, name: str, version: int) -> list[CardRevision]:
        """Every card revision of a version, with reviews.

        Raises:
            NotFound: no such version.
        """
        return await self.cards.history(name, version)
