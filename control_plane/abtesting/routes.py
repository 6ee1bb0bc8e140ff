"""``/v1/ab-tests``: A/B tests over REST (thin: decode, delegate, encode).

=============================================  ====  =========================================
``POST /v1/ab-tests``                           201  create a test (route written and pushed)
``GET /v1/ab-tests``                            200  list (``?model``, ``?status``)
``POST /v1/ab-tests/plan``                      200  sample size and duration (no state)
``GET /v1/ab-tests/{id}``                       200  one test
``GET /v1/ab-tests/{id}/report``                200  per-variant metrics + recommendation
``GET /v1/ab-tests/{id}/page``                  200  the HTML page (charts as inline SVG)
``GET /v1/ab-tests/{id}/assignment?key=``       200  the variant a routing key gets
``PUT /v1/ab-tests/{id}/split``                 200  new weights (audited, pushed)
``POST /v1/ab-tests/{id}/conclude``             200  100% to the chosen version
``POST /v1/ab-tests/{id}/stop``                 200  100% back to the control
``POST /v1/ab-tests/{id}/promote``              200  promote the treatment (``promote``)
=============================================  ====  =========================================

Errors are the platform's JSON ``{"error", "code"}``: 404 unknown test or version, 409 a
second running test of a model, 412 a version not in Staging/Production, a test that is not
running or a recommendation that is not "promote", 422 an invalid definition or split.
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, MediaType, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody, QueryParameter

from control_plane.abtesting.models import (
    ABTest,
    Conclusion,
    PlanRequest,
    RouteChange,
    TestDefinition,
    TestPlan,
    TestReport,
    TestStatus,
    TrafficSplit,
    Variant,
)
from control_plane.abtesting.page import render_page
from control_plane.abtesting.power import plan_test
from control_plane.abtesting.service import ABTestService
from control_plane.params import KeyPath, TextQuery
from control_plane.security.models import Permission, Principal
from modelyard.errors import InvalidArgument

TEST = "/{test_id:str}"


class ABTestController(Controller):
    """A/B tests between model versions."""

    path = "/v1/ab-tests"
    tags = ["ab-tests"]

    @post("/", status_code=201)
    async def create_test(
        self,
        data: JSONBody[TestDefinition],
        ab_test_service: NamedDependency[ABTestService],
        principal: NamedDependency[Principal],
    ) -> RouteChange:
        """Create a test: route written to ``config.json`` and pushed to every server."""
        return await ab_test_service.create_test(data, principal)

    @get("/")
    async def list_tests(
        self,
        ab_test_service: NamedDependency[ABTestService],
        model: TextQuery = None,
        status: FromQuery[TestStatus | None] = None,
    ) -> list[ABTest]:
        """Tests, newest first."""
        return await ab_test_service.list_tests(model=model, status=status)

    @post("/plan", status_code=200, opt={"permission": Permission.READ})
    async def plan(self, data: JSONBody[PlanRequest]) -> TestPlan:
        """Sample size per variant and expected duration (``power.plan_test``)."""
        try:
            return plan_test(**{f: getattr(data, f) for f in data.__struct_fields__})
        except ValueError as error:
            raise InvalidArgument(str(error)) from None
        except ArithmeticError:  # NOTE: weights or traffic so extreme the plan over/underflows
            raise InvalidArgument(
                "the plan cannot be computed for these numbers (weights and daily_traffic too "
                "large or too small)"
            ) from None

    @get(TEST)
    async def get_test(
        self, test_id: KeyPath, ab_test_service: NamedDependency[ABTestService]
    ) -> ABTest:
        """One test."""
        return await ab_test_service.get_test(test_id)

    @get(TEST + "/report")
    async def report(
        self,
        test_id: KeyPath,
        ab_test_service: NamedDependency[ABTestService],
        points: Annotated[int, QueryParameter(ge=0, le=200)] = 0,
    ) -> TestReport:
        """Per-variant metrics, the recommendation and (``points`` > 0) the time series."""
        return await ab_test_service.get_metrics(test_id, series_points=points)

    @get(TEST + "/page", media_type=MediaType.HTML)
    async def page(self, test_id: KeyPath, ab_test_service: NamedDependency[ABTestService]) -> str:
        """The test's page: variant metrics over time and the lift with its interval."""
        return render_page(await ab_test_service.get_metrics(test_id, series_points=24))

    @get(TEST + "/assignment")
    async def assignment(
        self,
        test_id: KeyPath,
        key: Annotated[str, QueryParameter(min_length=1, max_length=1024)],
        ab_test_service: NamedDependency[ABTestService],
    ) -> Variant:
        """The variant every inference server gives a request with this routing key."""
        return await ab_test_service.route_request(test_id, key)

    @put(TEST + "/split")
    async def split(
        self,
        test_id: KeyPath,
        data: JSONBody[TrafficSplit],
        ab_test_service: NamedDependency[ABTestService],
        principal: NamedDependency[Principal],
    ) -> RouteChange:
        """New weights, effective on the next request."""
        return await ab_test_service.update_traffic_split(test_id, data, principal)

    @post(TEST + "/conclude", status_code=200)
    async def conclude(
        self,
        test_id: KeyPath,
        data: JSONBody[Conclusion],
        ab_test_service: NamedDependency[ABTestService],
        principal: NamedDependency[Principal],
    ) -> RouteChange:
        """End the test; the chosen version gets all traffic."""
        return await ab_test_service.conclude(test_id, data, principal)

    @post(TEST + "/stop", status_code=200)
    async def stop(
        self,
        test_id: KeyPath,
        ab_test_service: NamedDependency[ABTestService],
        principal: NamedDependency[Principal],
    ) -> RouteChange:
        """Abandon the test; the control gets all traffic."""
        return await ab_test_service.stop(test_id, principal)

    @post(TEST + "/promote", status_code=200, opt={"permission": Permission.PROMOTE})
    async def promote(
        self,
        test_id: KeyPath,
        ab_test_service: NamedDependency[ABTestService],
        principal: NamedDependency[Principal],
    ) -> RouteChange:
        """Promote the treatment to Production (only on a "promote" recommendation)."""
        return await ab_test_service.promote(test_id, principal)
