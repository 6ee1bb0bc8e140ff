"""The A/B testing rules over a real registry, model repository and HTTP route receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from control_plane.abtesting.models import (
    Conclusion,
    Metric,
    MetricKind,
    TestMode,
    TestStatus,
    TrafficSplit,
)
from control_plane.abtesting.recommendation import Action
from modelyard import model_repository as layout
from modelyard.enums import ModelStage, ModelVariant
from modelyard.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from modelyard.model_repository import Route
from modelyard.routing import assign_arm
from modelyard.storage.audit import audit_events
from modelyard.storage.database import Database
from tests.control_plane.abtesting.helpers import (
    MemorySource,
    RouteReceiver,
    build_service,
    control_and_treatment,
    definition,
    observations,
)
from tests.control_plane.registry.helpers import ADMIN, APPROVER, DEVELOPER, approved_version


@pytest.fixture
async def receiver() -> AsyncIterator[RouteReceiver]:
    server = RouteReceiver()
    await server.start()
    yield server
    await server.stop()


def _routes(tmp_path: Path, model: str) -> list[tuple[int, float, str]]:
    config = layout.read_model_config(tmp_path / "repository" / model)
    return [(r.version, r.weight, r.variant.value) for r in config.routes]


async def test_create_writes_the_route_and_pushes_it_reporting_unreachable_servers(
    database: Database, tmp_path: Path, receiver: RouteReceiver
) -> None:
    service, registry = build_service(
        database, tmp_path, [receiver.url, "http://127.0.0.1:9"], MemorySource()
    )
    v1, v2 = await control_and_treatment(registry, "churn")
    change = await service.create_test(definition("churn", v1, v2), DEVELOPER)
    assert _routes(tmp_path, "churn") == [(v1, 0.5, "control"), (v2, 0.5, "treatment")]
    reached, unreachable = change.servers
    assert (reached.applied, reached.workers_applied) == (True, 2)
    assert not unreachable.applied
    assert "unreachable" in (unreachable.error or "")
    method, path, authorization, body = receiver.requests[0]
    assert (method, path, authorization) == ("PUT", "/v2/models/churn/routes", "Bearer s3cret")
    assert b'"variant":"treatment"' in body
    with pytest.raises(AlreadyExists):
        await service.create_test(definition("churn", v1, v2), DEVELOPER)


async def test_only_staging_or_production_versions_take_part(
    database: Database, tmp_path: Path
) -> None:
    service, registry = build_service(database, tmp_path, [], MemorySource())
    v1, _ = await control_and_treatment(registry, "churn")
    unstaged = await approved_version(registry, "churn")
    with pytest.raises(FailedPrecondition, match="only Staging or Production"):
        await service.create_test(definition("churn", v1, unstaged), DEVELOPER)
    two_controls = tuple(
        msgspec.structs.replace(v, role=ModelVariant.CONTROL)
        for v in definition("churn", v1, unstaged).variants
    )
    with pytest.raises(InvalidArgument, match="exactly one control and one treatment"):
        await service.create_test(
            definition("churn", v1, unstaged, variants=two_controls), DEVELOPER
        )
    assert await service.list_tests() == []


async def test_route_request_matches_the_data_plane_hash(
    database: Database, tmp_path: Path
) -> None:
    service, registry = build_service(database, tmp_path, [], MemorySource())
    v1, v2 = await control_and_treatment(registry, "churn")
    d = definition("churn", v1, v2)
    test = (await service.create_test(d, DEVELOPER)).test
    for key in ("user-1", "user-2", 42, "ü"):
        variant = await service.route_request(test.id, key)
        assert variant.version == (v1, v2)[assign_arm(key, [0.5, 0.5])]


async def test_split_is_validated_written_pushed_audited_and_starts_a_phase(
    database: Database, tmp_path: Path, receiver: RouteReceiver
) -> None:
    service, registry = build_service(database, tmp_path, [receiver.url], MemorySource())
    v1, v2 = await control_and_treatment(registry, "churn")
    test = (await service.create_test(definition("churn", v1, v2), DEVELOPER)).test
    for weights, problem in (
        ({str(v1): 0.5}, "exactly the test's versions"),
        ({str(v1): 0.7, str(v2): 0.7}, "sum to 1"),
        ({str(v1): 1.5, str(v2): -0.5}, "non-negative"),
        ({str(v1): 0.5, "99": 0.5}, "exactly the test's versions"),
    ):
        with pytest.raises(InvalidArgument, match=problem):
            await service.update_traffic_split(test.id, TrafficSplit(weights=weights), DEVELOPER)
    change = await service.update_traffic_split(
        test.id, TrafficSplit(weights={str(v1): 0.8, str(v2): 0.2}, reason="ramp"), DEVELOPER
    )
    assert _routes(tmp_path, "churn") == [(v1, 0.8, "control"), (v2, 0.2, "treatment")]
    assert change.test.phase_started_at > test.phase_started_at
    assert len(receiver.requests) == 2
    async with database.read() as conn:
        actions = [
            row.action
            for row in await conn.execute(
                sa.select(audit_events.c.action).order_by(audit_events.c.id)
            )
        ]
    assert actions[-4:] == ["ab_test_create", "set_routes", "set_routes", "ab_test_split"]


async def test_conclude_and_stop_route_everything_to_one_version(
    database: Database, tmp_path: Path
) -> None:
    service, registry = build_service(database, tmp_path, [], MemorySource())
    v1, v2 = await control_and_treatment(registry, "churn")
    test = (await service.create_test(definition("churn", v1, v2), DEVELOPER)).test
    ended = (await service.conclude(test.id, Conclusion(version=v2), DEVELOPER)).test
    assert (ended.status, ended.winner) == (TestStatus.CONCLUDED, v2)
    assert _routes(tmp_path, "churn") == [(v2, 1.0, "control")]
    with pytest.raises(FailedPrecondition, match="not running"):
        await service.stop(test.id, DEVELOPER)
    again = (await service.create_test(definition("churn", v1, v2), DEVELOPER)).test
    stopped = (await service.stop(again.id, DEVELOPER)).test
    assert (stopped.status, stopped.winner) == (TestStatus.STOPPED, v1)
    assert _routes(tmp_path, "churn") == [(v1, 1.0, "control")]


async def test_promotion_needs_a_promote_recommendation_then_goes_through_the_registry(
    database: Database, tmp_path: Path
) -> None:
    source = MemorySource()
    service, registry = build_service(database, tmp_path, [], source)
    v1, v2 = await control_and_treatment(registry, "churn")
    test = (await service.create_test(definition("churn", v1, v2), DEVELOPER)).test
    source.add("churn", observations(v1, ModelVariant.CONTROL, 3000, 0.10, seed=1))
    source.add("churn", observations(v2, ModelVariant.TREATMENT, 300, 0.20, seed=2))
    early = await service.get_metrics(test.id)
    assert early.days_to_minimum_sample is not None
    assert early.days_to_minimum_sample > 0  # the treatment has 300 of 500 units
    with pytest.raises(FailedPrecondition, match="keep_collecting"):
        await service.promote(test.id, APPROVER)
    source.add("churn", observations(v2, ModelVariant.TREATMENT, 2700, 0.20, seed=3))
    report = await service.get_metrics(test.id)
    assert report.recommendation.action is Action.PROMOTE_TREATMENT
    with pytest.raises(PermissionDenied, match="promote"):
        await service.promote(test.id, DEVELOPER)  # developers may not promote
    ended = (await service.promote(test.id, ADMIN)).test
    assert (ended.status, ended.winner) == (TestStatus.CONCLUDED, v2)
    assert (await registry.get("churn", v2)).stage is ModelStage.PRODUCTION
    assert (await registry.get("churn", v1)).stage is ModelStage.ARCHIVED
    assert _routes(tmp_path, "churn") == [(v2, 1.0, "control")]


async def test_without_a_prediction_log_metrics_fail_clearly(
    database: Database, tmp_path: Path
) -> None:
    service, registry = build_service(database, tmp_path, [], None)
    v1, v2 = await control_and_treatment(registry, "churn")
    test = (await service.create_test(definition("churn", v1, v2), DEVELOPER)).test
    with pytest.raises(FailedPrecondition, match="no prediction log"):
        await service.get_metrics(test.id)


async def test_sequential_mode_and_secondary_metrics_in_the_report(
    database: Database, tmp_path: Path
) -> None:
    source = MemorySource()
    service, registry = build_service(database, tmp_path, [], source)
    v1, v2 = await control_and_treatment(registry, "churn")
    d = definition(
        "churn",
        v1,
        v2,
        mode=TestMode.SEQUENTIAL,
        secondary_metrics=(
            Metric(name="revenue", kind=MetricKind.VALUE),
            Metric(name="latency2", kind=MetricKind.LATENCY_MS, higher_is_better=False),
        ),
    )
    test = (await service.create_test(d, DEVELOPER)).test
    # Equal rates: sequential mode keeps collecting (a fixed test would keep the control).
    source.add("churn", observations(v1, ModelVariant.CONTROL, 2000, 0.10, seed=5))
    source.add("churn", observations(v2, ModelVariant.TREATMENT, 2000, 0.10, seed=6))
    report = await service.get_metrics(test.id)
    verdict = report.recommendation
    assert (verdict.action, verdict.reason.value) == (Action.KEEP_COLLECTING, "not_significant")
    assert [s.name for s in verdict.secondary] == ["revenue", "latency2"]
    latency = verdict.secondary[1]
    assert latency.comparison is not None
    assert latency.adjusted_p_value is not None
    assert latency.adjusted_p_value >= latency.comparison.p_value
    assert verdict.secondary[0].comparison is None  # no numeric outcomes given
    assert [v.requests for v in report.variants] == [2000, 2000]
    assert report.days_to_minimum_sample == 0.0


async def test_the_registry_refuses_routes_to_versions_not_served(
    database: Database, tmp_path: Path
) -> None:
    _, registry = build_service(database, tmp_path, [], MemorySource())
    v1, _ = await control_and_treatment(registry, "churn")
    unstaged = await approved_version(registry, "churn")
    routes = (
        Route(version=v1, weight=0.5),
        Route(version=unstaged, weight=0.5, variant=ModelVariant.TREATMENT),
    )
    with pytest.raises(FailedPrecondition, match=f"\\[{unstaged}\\] are not in Staging"):
        await registry.stages.set_routes("churn", routes, DEVELOPER)
    assert _routes(tmp_path, "churn") == []
