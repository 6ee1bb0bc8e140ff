"""Drift checks of served model versions against their reference profiles.

- A version's reference profile is built from its training sample with
  :func:`modelyard.sketches.build_reference_profile` and stored with the version, and as a
  file in the publisher's references folder, which the registry's publisher copies into
  ``<repo>/<model>/<version>/reference.json`` when it publishes the version (same atomic
  rename as ``model.onnx``), so inference servers bin served values on the reference's edges.
  A version already published gets the file at once (atomic replace).
- :meth:`DriftService.check_drift` pulls the window's sketches from every configured server,
  merges them, judges every feature and the score with the model's
  :class:`~control_plane.drift.DriftPolicy` (Evidently 0.7's defaults unless configured),
  stores a :class:`DriftReport`, and raises a ``drift`` alert with per-feature details when
  the dataset (or the prediction score) drifted. Alerts de-duplicate (see
  :class:`AlertService`), so a persistent drift stays one alert.
- :meth:`DriftService.check_all` checks every version that has a reference; the scheduler
  runs it every ``monitoring.drift_check_interval``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from control_plane.drift import DatasetDriftResult, DriftPolicy, FeatureDriftResult, dataset_drift
from control_plane.monitoring.drift_models import DriftCheckRequest, DriftReport, ReferenceSample
from control_plane.monitoring.models import AlertCandidate, AlertType, FeatureDetail, Severity
from control_plane.registry.naming import check_name
from control_plane.scheduler.scheduler import utc_now
from modelyard.errors import FailedPrecondition, InvalidArgument, ModelyardError, NotFound
from modelyard.sketches import ReferenceProfile, WindowSketches, build_reference_profile, encode
from modelyard.timestamps import request_window

if TYPE_CHECKING:
    from control_plane.monitoring.drift_store import SqlDriftStore
    from control_plane.monitoring.service import AlertService
    from control_plane.monitoring.sketch_client import SketchClient
    from control_plane.registry.publisher import RepositoryPublisher
    from control_plane.registry.service import RegistryService
    from modelyard.storage import Database

log = logging.getLogger(__name__)
REFERENCE_FILE = "reference.json"


class DriftService:
    """Reference profiles, drift checks and reports.

    Args:
        database: the platform database.
        store: references, policies and reports.
        alerts: where drift alerts go.
        sketches: reads merged sketches from the inference servers.
        publisher: the model repository (for ``reference.json``), if any.
        registry: checks that a version exists before it gets a reference, if given.
        default_window_s: the window of periodic checks.
        clock: the wall clock (UTC).
    """

    def __init__(
        self,
        database: Database,
        store: SqlDriftStore,
        alerts: AlertService,
        sketches: SketchClient,
        *,
        publisher: RepositoryPublisher | None = None,
        registry: RegistryService | None = None,
        default_window_s: float = 3600.0,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._database = database
        self._store = store
        self._alerts = alerts
        self._sketches = sketches
        self._publisher = publisher
        self._registry = registry
        self._default_window = dt.timedelta(seconds=default_window_s)
        self._clock = clock

    async def set_reference(
        self, model: str, version: int, sample: ReferenceSample
    ) -> ReferenceProfile:
        """Build and store the reference profile of ``model`` ``version`` from its sample.

        Raises:
            InvalidArgument: a bad model name, an empty sample, columns of different lengths,
                a numeric column without a finite value.
            NotFound: the registry has no such version.
        """
        check_name(model)
        if self._registry is not None:
            await self._registry.get(model, version)
        if not sample.columns:
            raise InvalidArgument("a reference sample needs at least one column")
        profile = build_reference_profile(sample.columns, score=sample.score)
        await self.store_reference(model, version, profile)
        return profile

    async def store_reference(self, model: str, version: int, profile: ReferenceProfile) -> None:
        """Store a built profile (the registry calls this for registration samples)."""
        async with self._database.write() as conn:
            await self._store.put_reference(conn, model, version, profile, self._clock())
        self.publish_reference(model, version, profile)

    def publish_reference(self, model: str, version: int, profile: ReferenceProfile) -> bool:
        """Write the profile where publication picks it up, and into the version's repository
        folder if it is published already; whether the latter happened."""
        if self._publisher is None:
            return False
        data = encode(profile)
        if self._publisher.references is not None:
            staged = self._publisher.references / self._publisher.model_dir(model).name
            staged = staged / str(version)
            staged.mkdir(parents=True, exist_ok=True)
            _atomic_write(staged / REFERENCE_FILE, data)
        folder = self._publisher.model_dir(model) / str(version)
        if not folder.is_dir():
            return False
        _atomic_write(folder / REFERENCE_FILE, data)
        return True

    async def publish_references(self) -> int:
        """Write the missing ``reference.json`` of every published version with a reference
        (versions published after their reference was stored); how many were written."""
        if self._publisher is None:
            return 0
        async with self._database.read() as conn:
            versions = await self._store.referenced_versions(conn)
        written = 0
        for model, version in versions:
            folder = self._publisher.model_dir(model) / str(version)
            if folder.is_dir() and not (folder / REFERENCE_FILE).exists():
                profile = await self.reference(model, version)
                written += self.publish_reference(model, version, profile)
        return written

    async def reference(self, model: str, version: int) -> ReferenceProfile:
        """The stored reference profile.

        Raises:
            NotFound: the version has no reference profile.
        """
        async with self._database.read() as conn:
            profile = await self._store.reference(conn, model, version)
        if profile is None:
            raise NotFound("reference profile of model", model, version=version)
        return profile

    async def set_policy(self, model: str, policy: DriftPolicy) -> DriftPolicy:
        """Store the drift policy (methods, thresholds, drift share) of ``model``.

        Raises:
            InvalidArgument: a bad model name (one with a NUL was stored on SQLite before).
        """
        check_name(model)
        async with self._database.write() as conn:
            await self._store.put_policy(conn, model, policy, self._clock())
        return policy

    async def policy(self, model: str) -> DriftPolicy:
        """The model's policy (Evidently's defaults when none is stored)."""
        check_name(model)
        async with self._database.read() as conn:
            return await self._store.policy(conn, model) or DriftPolicy()

    async def check_drift(
        self, model: str, version: int, request: DriftCheckRequest | None = None
    ) -> DriftReport:
        """Check one window of ``model`` ``version`` and store the report.

        Raises:
            NotFound: the version has no reference profile.
            InvalidArgument: an empty or inverted window.
            FailedPrecondition: no server served the version in the window.
            Unavailable: an inference server could not be read.
        """
        since, until = self._window(request or DriftCheckRequest())
        reference = await self.reference(model, version)
        window = await self._sketches.window(model, version, since, until)
        if window is None or window.rows == 0:
            raise FailedPrecondition(
                f"no served rows of model {model!r} version {version} between "
                f"{since.isoformat()} and {until.isoformat()}"
            )
        policy = await self.policy(model)
        result = dataset_drift(reference, window, policy)
        alert_id = await self._alert(model, version, since, until, result)
        report = DriftReport(
            id=0,
            model=model,
            version=version,
            window_start=since,
            window_end=until,
            created_at=self._clock(),
            drifted=result.drifted,
            share=result.share,
            rows=window.rows,
            result=result,
            alert_id=alert_id,
        )
        async with self._database.write() as conn:
            report_id = await self._store.add_report(conn, report, window)
        return msgspec.structs.replace(report, id=report_id)

    def _window(self, request: DriftCheckRequest) -> tuple[dt.datetime, dt.datetime]:
        width = dt.timedelta(seconds=request.window_s) if request.window_s else None
        return request_window(
            request.since,
            request.until,
            width or self._default_window,
            self._clock(),
            "drift window",
        )

    async def _alert(
        self,
        model: str,
        version: int,
        since: dt.datetime,
        until: dt.datetime,
        result: DatasetDriftResult,
    ) -> int | None:
        score_drifted = result.score is not None and result.score.drifted
        if not result.drifted and not score_drifted:
            return None
        judged = [r for r in [*result.features, result.score] if r and r.score is not None]
        measured = len([r for r in result.features if r.score is not None])
        summary = (
            f"{result.drifted_features} of {measured} features drifted "
            f"(share {result.share:.2f}, dataset drifts at "
            f"{result.drift_share:.2f})" + ("; prediction score drifted" if score_drifted else "")
        )
        severity = Severity.CRITICAL if result.drifted and score_drifted else Severity.WARNING
        alert, _ = await self._alerts.raise_alert(
            AlertCandidate(
                type=AlertType.DRIFT,
                severity=severity,
                model=model,
                version=version,
                window_start=since,
                window_end=until,
                summary=summary,
                details=tuple(_detail(r) for r in judged),
            )
        )
        return alert.id

    async def get_report(self, report_id: int) -> DriftReport:
        """One report.

        Raises:
            NotFound: no report has that id.
        """
        async with self._database.read() as conn:
            report = await self._store.report(conn, report_id)
        if report is None:
            raise NotFound("drift report", str(report_id))
        return report

    async def report_data(
        self, report_id: int
    ) -> tuple[DriftReport, ReferenceProfile, WindowSketches]:
        """A report with the reference and merged sketches it compared (for its charts).

        Raises:
            NotFound: no report has that id.
        """
        report = await self.get_report(report_id)
        async with self._database.read() as conn:
            window = await self._store.report_window(conn, report_id)
        if window is None:
            raise NotFound("drift report", str(report_id))
        return report, await self.reference(report.model, report.version), window

    async def list_reports(
        self, *, model: str | None = None, version: int | None = None, limit: int = 100
    ) -> list[DriftReport]:
        """Reports, newest first."""
        async with self._database.read() as conn:
            return await self._store.reports(conn, model, version, min(limit, 1000))

    async def monitored_versions(self) -> list[tuple[str, int]]:
        """Every (model, version) with a reference profile: the versions under monitoring."""
        async with self._database.read() as conn:
            return await self._store.referenced_versions(conn)

    async def check_all(self) -> list[DriftReport]:
        """Check the default window of every version with a reference; versions that fail
        (no traffic, a server down) are logged and skipped."""
        async with self._database.read() as conn:
            versions = await self._store.referenced_versions(conn)
        reports = []
        for model, version in versions:
            try:
                reports.append(await self.check_drift(model, version))
            except ModelyardError as error:  # NOTE: one version's problem must not stop others
                log.info("drift check of %s v%s skipped: %s", model, version, error)
            except Exception:  # NOTE: nor one version's unexpected error (logged in full)
                log.exception("drift check of %s v%s failed", model, version)
        return reports


def _detail(result: FeatureDriftResult) -> FeatureDetail:
    score = float(result.score or 0.0)
    return FeatureDetail(
        feature=result.feature,
        method=result.method.value,
        score=score,
        threshold=result.threshold,
        flagged=result.drifted,
        p_value=score if result.method.is_p_value else None,
    )


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` so a reader sees the old file or the new one, never a part."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        raise


__all__ = ["REFERENCE_FILE", "DriftService"]
