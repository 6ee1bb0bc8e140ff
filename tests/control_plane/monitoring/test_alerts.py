"""Alerts on SQLite and PostgreSQL: de-duplication with cool-down, lifecycle, routing."""

from __future__ import annotations

import asyncio

import pytest

from control_plane.monitoring.models import (
    Alert,
    AlertState,
    AlertType,
    ChannelKind,
    ChannelSpec,
    DeliveryState,
    Severity,
)
from modelyard.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelyard.storage import Database
from tests.control_plane.monitoring.helpers import build, drift_candidate, settings


async def test_repeats_fold_into_the_open_alert_until_resolved_and_cooled_down(
    database: Database,
) -> None:
    monitoring, clock = build(database, settings(alert_cooldown_s=600))
    alerts = monitoring.alerts
    first, new = await alerts.raise_alert(drift_candidate())
    assert new
    assert first.state is AlertState.OPEN
    assert first.occurrences == 1
    assert [d.feature for d in first.details] == ["tenure", "plan"]
    assert first.details[0].score == 0.31
    assert first.details[0].threshold == 0.05
    clock.advance(hours=5)  # persistent drift: no new alert however long it lasts
    again, new = await alerts.raise_alert(drift_candidate(severity=Severity.CRITICAL))
    assert not new
    assert again.id == first.id
    assert again.occurrences == 2
    assert again.severity is Severity.CRITICAL
    other, new = await alerts.raise_alert(drift_candidate(version=2))
    assert new
    assert other.id != first.id
    await alerts.acknowledge(first.id, actor="alice")
    resolved = await alerts.resolve(first.id, actor="bob")
    assert resolved.state is AlertState.RESOLVED
    assert resolved.acknowledged_by == "alice"
    assert resolved.resolved_by == "bob"
    clock.advance(seconds=599)  # within the cool-down: still folded in
    folded, new = await alerts.raise_alert(drift_candidate())
    assert not new
    assert folded.id == first.id
    assert folded.state is AlertState.RESOLVED
    clock.advance(seconds=601)
    fresh, new = await alerts.raise_alert(drift_candidate())
    assert new
    assert fresh.id not in (first.id, other.id)
    listed = await alerts.list_alerts(model="churn", version=1)
    assert [a.id for a in listed] == [fresh.id, first.id]
    assert [a.id for a in await alerts.list_alerts(state=AlertState.RESOLVED)] == [first.id]
    assert monitoring.metrics.alerts.labels("drift", "warning")._value.get() == 3
    assert monitoring.metrics.suppressed.labels("drift")._value.get() == 2


async def test_reports_raised_at_once_open_one_alert(database: Database) -> None:
    """Ten checks of one version finishing together: on PostgreSQL (READ COMMITTED) each read
    no alert of the key and opened its own (a fuzz saw 3-5 for 10); SQLite's write
    transactions take turns. Now the key's transactions take turns on both."""
    monitoring, _ = build(database, settings())
    raised = await asyncio.gather(
        *(monitoring.alerts.raise_alert(drift_candidate()) for _ in range(10))
    )
    assert len({alert.id for alert, _ in raised}) == 1
    assert sum(new for _, new in raised) == 1
    (alert,) = await monitoring.alerts.list_alerts(model="churn", version=1)
    assert alert.occurrences == 10


async def test_lifecycle_errors(database: Database) -> None:
    monitoring, _ = build(database, settings())
    alert, _ = await monitoring.alerts.raise_alert(drift_candidate())
    assert (
        await monitoring.alerts.acknowledge(alert.id, actor="a")
    ).state is AlertState.ACKNOWLEDGED
    assert (await monitoring.alerts.acknowledge(alert.id, actor="a")).acknowledged_by == "a"
    await monitoring.alerts.resolve(alert.id, actor="a")
    with pytest.raises(FailedPrecondition, match="resolved"):
        await monitoring.alerts.acknowledge(alert.id, actor="a")
    with pytest.raises(FailedPrecondition, match="resolved"):
        await monitoring.alerts.resolve(alert.id, actor="a")
    with pytest.raises(NotFound, match="999"):
        await monitoring.alerts.get_alert(999)


async def test_channels_route_by_type_and_severity(database: Database) -> None:
    monitoring, _ = build(database, settings())
    alerts = monitoring.alerts
    await alerts.add_channel(
        ChannelSpec(
            name="oncall",
            kind=ChannelKind.WEBHOOK,
            target="http://127.0.0.1:9/x",
            secret="s",
            min_severity=Severity.CRITICAL,
        )
    )
    await alerts.add_channel(
        ChannelSpec(
            name="perf",
            kind=ChannelKind.SLACK,
            target="https://hooks.example/T",
            types=(AlertType.PERFORMANCE_DEGRADATION,),
        )
    )
    await alerts.add_channel(
        ChannelSpec(name="team", kind=ChannelKind.EMAIL, target="a@example.com, b@example.com")
    )
    warning, _ = await alerts.raise_alert(drift_candidate())
    critical, _ = await alerts.raise_alert(drift_candidate(version=2, severity=Severity.CRITICAL))
    perf, _ = await alerts.raise_alert(
        drift_candidate(version=3, type=AlertType.PERFORMANCE_DEGRADATION)
    )

    async def routed(alert_id: int) -> list[str]:
        return sorted(d.channel for d in await alerts.deliveries(alert_id=alert_id))

    assert await routed(warning.id) == ["team"]
    assert await routed(critical.id) == ["oncall", "team"]
    assert await routed(perf.id) == ["perf", "team"]
    assert all(d.state is DeliveryState.PENDING for d in await alerts.deliveries())
    listed = await alerts.channels()
    assert [(c.name, c.signed) for c in listed] == [
        ("oncall", True),
        ("perf", False),
        ("team", False),
    ]
    with pytest.raises(AlreadyExists):
        await alerts.add_channel(ChannelSpec(name="team", kind=ChannelKind.EMAIL, target="c@d.e"))
    await alerts.delete_channel("perf")
    with pytest.raises(NotFound):
        await alerts.delete_channel("perf")


@pytest.mark.parametrize(
    ("kind", "target", "name"),
    [
        (ChannelKind.EMAIL, "not-an-address", "ok"),
        (ChannelKind.EMAIL, "", "ok"),
        (ChannelKind.WEBHOOK, "ftp://x/y", "ok"),
        (ChannelKind.SLACK, "hooks.slack.com", "ok"),
        (ChannelKind.WEBHOOK, "http://x/y", "../etc"),
    ],
)
async def test_invalid_channels_are_refused(
    database: Database, kind: ChannelKind, target: str, name: str
) -> None:
    monitoring, _ = build(database, settings())
    with pytest.raises(InvalidArgument):
        await monitoring.alerts.add_channel(ChannelSpec(name=name, kind=kind, target=target))


async def test_subscribers_hear_of_new_alerts_only(database: Database) -> None:
    monitoring, _ = build(database, settings())
    heard: list[int] = []

    async def listener(alert: Alert) -> None:
        heard.append(alert.id)

    async def broken(alert: Alert) -> None:
        raise RuntimeError("subscriber bug")

    monitoring.alerts.subscribe(broken)
    monitoring.alerts.subscribe(listener)
    first, _ = await monitoring.alerts.raise_alert(drift_candidate())
    await monitoring.alerts.raise_alert(drift_candidate())  # a repeat: folded, not announced
    second, _ = await monitoring.alerts.raise_alert(drift_candidate(version=2))
    assert heard == [first.id, second.id]
