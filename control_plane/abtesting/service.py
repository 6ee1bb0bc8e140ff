"""The A/B testing rules: create, route, measure, re-split, conclude, stop, promote.

Routes are written through the registry (:meth:`StageService.set_routes`: the model's lock,
the Staging/Production check and the audit event, then ``config.json`` atomically), then
pushed to every inference server (:class:`~.servers.RoutePusher`); a server that cannot be
reached is reported in the answer, and picks the route up from the repository when it scans.
Metrics are read per variant from the prediction log and outcomes (:class:`ObservationSource`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING

import msgspec

from control_plane.abtesting import analysis
from control_plane.abtesting.assignment import assign, routes_of
from control_plane.abtesting.models import (
    ABTest,
    Conclusion,
    RouteChange,
    TestDefinition,
    TestReport,
    TestStatus,
    TrafficSplit,
    Variant,
)
from control_plane.abtesting.power import days_to_sample
from control_plane.abtesting.recommendation import Action
from control_plane.abtesting.validation import check_definition, check_split
from control_plane.registry.context import SERVED_STAGES
from control_plane.security.guards import check
from control_plane.security.models import Permission
from modelyard.enums import ModelStage, ModelVariant
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.model_repository import Route
from modelyard.storage.audit import AuditEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.abtesting.analysis import Observation
    from control_plane.abtesting.models import RouteApplied
    from control_plane.abtesting.servers import RoutePusher
    from control_plane.abtesting.source import ObservationSource
    from control_plane.abtesting.store import ABTestStore
    from control_plane.registry.service import RegistryService
    from control_plane.security.models import Principal
    from modelyard.models import Scalar
    from modelyard.storage.audit import AuditLog
    from modelyard.storage.database import Database


class ABTestService:
    """A/B tests of model versions.

    Args:
        database: the platform database.
        store: the tests' SQL.
        audit_log: the platform audit log.
        registry: the model registry (versions, stages, routes, promotion).
        pusher: applies routes on the inference servers.
        source: the prediction log and outcomes; None where this build has no prediction
            log (metrics, reports and promotion then fail with FailedPrecondition).
    """

    def __init__(
        self,
        *,
        database: Database,
        store: ABTestStore,
        audit_log: AuditLog,
        registry: RegistryService,
        pusher: RoutePusher,
        source: ObservationSource | None,
    ) -> None:
        self._db = database
        self._store = store
        self._audit = audit_log
        self._registry = registry
        self._pusher = pusher
        self._source = source

    async def create_test(self, definition: TestDefinition, principal: Principal) -> RouteChange:
        """Store a running test, write its route into ``config.json`` and push it.

        Raises:
            InvalidArgument: an invalid definition (named).
            NotFound: a variant's version is not registered.
            FailedPrecondition: a variant's version is not in Staging or Production.
            AlreadyExists: the model has a running test.
        """
        check(principal, Permission.WRITE)
        check_definition(definition)
        for variant in definition.variants:
            model = await self._registry.get(definition.model, variant.version)
            if model.stage not in SERVED_STAGES:
                raise FailedPrecondition(
                    f"model {definition.model!r} version {variant.version} is "
                    f"{model.stage.value}; only Staging or Production versions may take part"
                )
        now = dt.datetime.now(dt.UTC)
        test = ABTest(
            id=secrets.token_hex(8),
            definition=definition,
            status=TestStatus.RUNNING,
            created_at=now,
            created_by=principal.name,
            phase_started_at=now,
        )
        async with self._db.write() as conn:
            await self._store.insert(conn, test)
            await self._record(conn, test, principal, "create", "running", "")
        try:
            servers = await self._apply(test, routes_of(definition.variants), principal, "create")
        except Exception:
            # The route could not be written: the test never ran.
            await self._finish(test, TestStatus.STOPPED, None, principal, "route not written")
            raise
        return RouteChange(test=test, servers=servers)

    async def get_test(self, test_id: str) -> ABTest:
        """One test.

        Raises:
            NotFound: no such test.
        """
        async with self._db.read() as conn:
            test = await self._store.get(conn, test_id)
        if test is None:
            raise NotFound("A/B test", test_id)
        return test

    async def list_tests(
        self, *, model: str | None = None, status: TestStatus | None = None
    ) -> list[ABTest]:
        """Tests, newest first."""
        async with self._db.read() as conn:
            return await self._store.list(conn, model=model, status=status)

    async def route_request(self, test_id: str, key: Scalar) -> Variant:
        """The variant every inference server gives a request with this routing key.

        Raises:
            NotFound: no such test.
        """
        return assign((await self.get_test(test_id)).variants, key)

    async def get_metrics(self, test_id: str, *, series_points: int = 0) -> TestReport:
        """Per-variant metrics (each from its own records only) and the recommendation.

        Raises:
            NotFound: no such test.
        """
        test = await self.get_test(test_id)
        observations = await self._observations(test)
        d = test.definition
        metrics = (d.primary_metric, *d.guardrail_metrics, *d.secondary_metrics)
        recommendation = analysis.recommendation_for(test, observations)
        elapsed = (test.ended_at or dt.datetime.now(dt.UTC)) - test.phase_started_at
        return TestReport(
            test=test,
            variants=tuple(
                analysis.variant_metrics(v, observations[v.version], metrics, d.alpha)
                for v in d.variants
            ),
            recommendation=recommendation,
            days_to_minimum_sample=days_to_sample(
                recommendation.units, d.minimum_sample_size, elapsed / dt.timedelta(days=1)
            ),
            series=analysis.time_series(test, observations, series_points) if series_points else (),
        )

    async def update_traffic_split(
        self, test_id: str, split: TrafficSplit, principal: Principal
    ) -> RouteChange:
        """New weights for a running test: validated, written, pushed, audited.

        The change starts a new phase: statistics read only the records from here on.

        Raises:
            NotFound: no such test.
            FailedPrecondition: the test is not running.
            InvalidArgument: weights not matching the variants, negative or not summing to 1.
        """
        check(principal, Permission.WRITE)
        test = await self._running(test_id)
        variants = check_split(test.variants, split.weights)
        updated = msgspec.structs.replace(
            test,
            definition=msgspec.structs.replace(test.definition, variants=variants),
            phase_started_at=dt.datetime.now(dt.UTC),
        )
        servers = await self._apply(updated, routes_of(variants), principal, split.reason)
        async with self._db.write() as conn:
            await self._store.update(conn, updated)
            split_text = ", ".join(f"{v.version}={v.weight:g}" for v in variants)
            await self._record(conn, updated, principal, "split", split_text, split.reason)
        return RouteChange(test=updated, servers=servers)

    async def conclude(
        self, test_id: str, conclusion: Conclusion, principal: Principal
    ) -> RouteChange:
        """End a running test and route 100% of the traffic to the chosen version.

        Raises:
            NotFound: no such test.
            FailedPrecondition: the test is not running.
            InvalidArgument: the version is not one of the test's.
        """
        check(principal, Permission.WRITE)
        test = await self._running(test_id)
        if conclusion.version not in {v.version for v in test.variants}:
            raise InvalidArgument(f"version {conclusion.version} is not a variant of the test")
        return await self._end(
            test, TestStatus.CONCLUDED, conclusion.version, principal, conclusion.reason
        )

    async def stop(self, test_id: str, principal: Principal, reason: str = "") -> RouteChange:
        """Abandon a running test: 100% of the traffic back to the control.

        Raises:
            NotFound: no such test.
            FailedPrecondition: the test is not running.
        """
        check(principal, Permission.WRITE)
        test = await self._running(test_id)
        control = next(v.version for v in test.variants if v.role is ModelVariant.CONTROL)
        return await self._end(test, TestStatus.STOPPED, control, principal, reason)

    async def promote(self, test_id: str, principal: Principal) -> RouteChange:
        """Promote the treatment to Production on a "promote" recommendation, then conclude.

        The registry applies its own rules (the ``promote`` permission, an approved card).

        Raises:
            NotFound: no such test.
            FailedPrecondition: the test is not running, the recommendation is not
                ``promote_treatment`` (its reason is named), or the card is not approved.
            PermissionDenied: without the ``promote`` permission.
        """
        check(principal, Permission.PROMOTE)
        report = await self.get_metrics(test_id)
        test = report.test
        if test.status is not TestStatus.RUNNING:
            raise FailedPrecondition(f"A/B test {test_id!r} is {test.status.value}")
        verdict = report.recommendation
        if verdict.action is not Action.PROMOTE_TREATMENT:
            raise FailedPrecondition(
                f"the recommendation is {verdict.action.value} ({verdict.reason.value}: "
                f"{verdict.detail}); only promote_treatment can be promoted"
            )
        treatment = next(v.version for v in test.variants if v.role is ModelVariant.TREATMENT)
        current = await self._registry.get(test.model, treatment)
        if current.stage is not ModelStage.PRODUCTION:
            await self._registry.stages.transition(
                test.model, treatment, ModelStage.PRODUCTION, principal, f"A/B test {test.id}"
            )
        return await self._end(
            test, TestStatus.CONCLUDED, treatment, principal, f"promoted: {verdict.detail}"
        )

    async def _observations(self, test: ABTest) -> dict[int, Sequence[Observation]]:
        if self._source is None:
            raise FailedPrecondition("no prediction log is configured: metrics are unavailable")
        return {
            v.version: await self._source.observations(
                test.model, v.version, v.role, test.phase_started_at, test.ended_at
            )
            for v in test.variants
        }

    async def _running(self, test_id: str) -> ABTest:
        test = await self.get_test(test_id)
        if test.status is not TestStatus.RUNNING:
            raise FailedPrecondition(f"A/B test {test_id!r} is {test.status.value}, not running")
        return test

    async def _end(
        self, test: ABTest, status: TestStatus, version: int, principal: Principal, reason: str
    ) -> RouteChange:
        route = (Route(version=version, weight=1.0, variant=ModelVariant.CONTROL),)
        servers = await self._apply(test, route, principal, reason)
        ended = await self._finish(test, status, version, principal, reason)
        return RouteChange(test=ended, servers=servers)

    async def _finish(
        self,
        test: ABTest,
        status: TestStatus,
        winner: int | None,
        principal: Principal,
        reason: str,
    ) -> ABTest:
        ended = msgspec.structs.replace(
            test, status=status, winner=winner, ended_at=dt.datetime.now(dt.UTC)
        )
        async with self._db.write() as conn:
            await self._store.update(conn, ended)
            await self._record(conn, ended, principal, status.value, str(winner), reason)
        return ended

    async def _apply(
        self, test: ABTest, routes: tuple[Route, ...], principal: Principal, reason: str
    ) -> tuple[RouteApplied, ...]:
        await self._registry.stages.set_routes(
            test.model, routes, principal, f"A/B test {test.id}: {reason}".rstrip(": ")
        )
        return await self._pusher.push(test.model, routes)

    async def _record(
        self,
        conn: AsyncConnection,
        test: ABTest,
        principal: Principal,
        action: str,
        to_state: str,
        reason: str,
    ) -> None:
        await self._audit.record(
            conn,
            AuditEvent(
                actor=principal.name,
                action=f"ab_test_{action}",
                entity_kind="ab_test",
                entity=f"{test.model}/{test.id}",
                to_state=to_state,
                reason=reason,
            ),
        )
