"""Composition root of the control plane: settings -> services -> Litestar application.

The only module that imports every feature package. Services are built once per process from
the settings and handed to controllers by Litestar's dependency injection under the names
the controllers ask for (``audit_log``, ``feature_service``, ...).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from control_plane.abtesting.routes import ABTestController
from control_plane.abtesting.servers import RoutePusher
from control_plane.abtesting.service import ABTestService
from control_plane.abtesting.source import PredictionLogSource
from control_plane.abtesting.store import SqlABTestStore
from control_plane.audit_routes import AuditController
from control_plane.batch.routes import BatchController
from control_plane.batch.service import BatchService
from control_plane.batch.store import SqlBatchJobStore
from control_plane.errors import EXCEPTION_HANDLERS
from control_plane.features.routes import FeatureController
from control_plane.features.service import FeatureService
from control_plane.features.store import SqlFeatureStore
from control_plane.monitoring.build import build_monitoring
from control_plane.monitoring.drift_routes import DriftController
from control_plane.monitoring.metrics import MonitoringMetrics
from control_plane.monitoring.models import Alert
from control_plane.monitoring.performance_routes import PerformanceController
from control_plane.monitoring.routes import MonitoringController
from control_plane.monitoring.sketch_client import SketchClient
from control_plane.predictions.routes import PredictionController
from control_plane.predictions.service import PredictionService
from control_plane.predictions.store import SqlPredictionStore
from control_plane.predictions.unpacker import BlockUnpacker
from control_plane.registry.artifacts import ArtifactStore
from control_plane.registry.build import build_registry
from control_plane.registry.publisher import RepositoryPublisher
from control_plane.registry.routes import LineageController, ModelController
from control_plane.retraining.routes import RetrainingController
from control_plane.retraining.service import RetrainingService
from control_plane.retraining.store import SqlRetrainingStore
from control_plane.scheduler import Scheduler
from control_plane.scheduler.routes import SchedulerController
from control_plane.security import PrincipalMiddleware, TokenService, authorize, current_principal
from control_plane.security.routes import TokenController
from control_plane.tracking.routes import TrackingController
from control_plane.tracking.service import TrackingService
from control_plane.tracking.tracker import ExperimentTracker
from control_plane.tuning.routes import TuningController
from control_plane.tuning.service import TuningService
from control_plane.tuning.store import TuningJobStore
from modelyard import __version__
from modelyard.storage import Database, upgrade
from modelyard.storage.audit import AuditLog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from modelyard.settings import Settings


class ControlPlaneServices:
    """Every service of one control-plane process, built from the settings.

    Args:
        settings: the effective settings.
        database: the platform database (migrated by :meth:`open`).
    """

    def __init__(
        self, settings: Settings, database: Database, *, schema: str | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.audit_log = AuditLog(database)
        self.feature_service = FeatureService(database, SqlFeatureStore(), self.audit_log)
        self.prediction_service = PredictionService(database, SqlPredictionStore())
        self.tracker = ExperimentTracker.from_settings(settings.tracking)
        self.tracking_service = TrackingService(self.tracker)
        self.tuning_service = TuningService(TuningJobStore(database), self.tracker, settings.tuning)
        self.token_service = TokenService(database, self.audit_log)
        self.registry = build_registry(
            settings, database, self.audit_log, features=self.feature_service
        )
        self.batch_service = BatchService(
            database,
            SqlBatchJobStore(),
            self.registry,
            ArtifactStore(Path(settings.registry.artifact_store)),
            Path(settings.batch.data_root),
        )
        self.ab_test_service = ABTestService(
            database=database,
            store=SqlABTestStore(),
            audit_log=self.audit_log,
            registry=self.registry,
            pusher=RoutePusher(
                settings.control_plane.inference_servers, settings.server.admin_token
            ),
            source=PredictionLogSource(self.prediction_service),
        )
        self.scheduler = Scheduler(
            database, tick_s=settings.scheduler.tick_s, lease_s=settings.scheduler.lease_s
        )
        """Shared by every feature with periodic work; started and stopped with the app."""
        self.monitoring = build_monitoring(
            settings.monitoring,
            database,
            sketches=SketchClient(
                settings.control_plane.inference_servers, settings.server.admin_token
            ),
            publisher=RepositoryPublisher(
                Path(settings.registry.model_repository),
                ArtifactStore(Path(settings.registry.artifact_store)),
                references=Path(settings.registry.artifact_store) / "references",
            ),
            registry=self.registry,
            predictions=self.prediction_service,
        )
        self.monitoring.register_jobs(self.scheduler, settings.monitoring)
        self.unpacker = BlockUnpacker(
            self.prediction_service,
            settings.control_plane.unpack_interval_s,
            self.monitoring.metrics.registry,
        )
        """Unpacks shipped prediction-log blocks; started and stopped with the app."""
        self.registry.use_references(self.monitoring.drift)
        self.retraining_service = RetrainingService(
            SqlRetrainingStore(database), self.registry, self.scheduler, settings, schema=schema
        )
        self.monitoring.alerts.subscribe(self._retrain_on_alert)
        self.admin_token_path: Path | None = None
        """Set by :meth:`open` when this start issued the first admin token."""

    @classmethod
    async def open(cls, settings: Settings, *, schema: str | None = None) -> ControlPlaneServices:
        """Connect to the configured database, migrate it, and build the services."""
        database = Database(
            settings.database.url, schema=schema, pool_size=settings.database.pool_size
        )
        await upgrade(database)
        services = cls(settings, database, schema=schema)
        await services.tuning_service.recover()
        await services.batch_service.recover()
        await services.retraining_service.start()
        services.admin_token_path = await services.token_service.ensure_admin_token(
            Path(settings.control_plane.admin_token_file)
        )
        return services

    async def _retrain_on_alert(self, alert: Alert) -> None:
        """Drift and performance alerts trigger retraining (property 27; the retraining
        service decides whether the model has a spec and ``retraining.on_alerts`` is on)."""
        await self.retraining_service.on_alert(alert.type.value, alert.model, alert.summary)

    def dependencies(self) -> dict[str, Provide]:
        """The services by the parameter names controllers declare."""
        provided: dict[str, Any] = {
            "audit_log": self.audit_log,
            "feature_service": self.feature_service,
            "prediction_service": self.prediction_service,
            "tracking_service": self.tracking_service,
            "tuning_service": self.tuning_service,
            "token_service": self.token_service,
            "registry": self.registry,
            "batch_service": self.batch_service,
            "ab_test_service": self.ab_test_service,
            "scheduler": self.scheduler,
            "alert_service": self.monitoring.alerts,
            "drift_service": self.monitoring.drift,
            "performance_service": self.monitoring.performance,
            "monitoring_metrics": self.monitoring.metrics,
            "retraining_service": self.retraining_service,
        }
        dependencies = {
            name: Provide(_constant(value), sync_to_thread=False)
            for name, value in provided.items()
        }
        dependencies["principal"] = Provide(current_principal, sync_to_thread=False)
        return dependencies

    async def close(self) -> None:
        """Stop background jobs, then release connections."""
        await self.scheduler.stop()
        await self.unpacker.stop()
        await self.monitoring.notifier.stop()
        await self.retraining_service.stop()
        await self.tuning_service.stop()
        await self.batch_service.stop()
        await self.database.dispose()


def _constant(value: Any) -> Any:
    def provide() -> Any:
        return value

    return provide


@get("/health", sync_to_thread=False, tags=["health"])
def health() -> dict[str, str]:
    """Liveness of the control plane."""
    return {"status": "ok", "version": __version__}


@get("/metrics", sync_to_thread=False, tags=["health"], media_type=CONTENT_TYPE_LATEST)
def metrics(monitoring_metrics: NamedDependency[MonitoringMetrics]) -> bytes:
    """Prometheus metrics of the control plane (alerts, notifications, prediction-log
    blocks pending and unpacked)."""
    return generate_latest(monitoring_metrics.registry)


def create_app(services: ControlPlaneServices) -> Litestar:
    """The Litestar application over ``services`` (which the caller owns and closes)."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await services.monitoring.notifier.start()
        await services.unpacker.start()
        if services.settings.scheduler.enabled:
            await services.scheduler.start()
        try:
            yield
        finally:
            await services.scheduler.stop()
            await services.monitoring.notifier.stop()

    return Litestar(
        route_handlers=[
            health,
            AuditController,
            FeatureController,
            PredictionController,
            TrackingController,
            TuningController,
            TokenController,
            ModelController,
            LineageController,
            BatchController,
            ABTestController,
            SchedulerController,
            MonitoringController,
            DriftController,
            PerformanceController,
            metrics,
            RetrainingController,
        ],
        dependencies=services.dependencies(),
        middleware=[PrincipalMiddleware(services.token_service)],
        guards=[authorize],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="modelyard control plane", version=__version__, use_handler_docstrings=True
        ),
        lifespan=[lifespan],
        debug=False,
    )
