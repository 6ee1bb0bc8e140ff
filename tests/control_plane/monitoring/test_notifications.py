"""Notifications against real receivers, on SQLite and PostgreSQL: e-mail through an aiosmtpd
server, Slack's JSON to a local HTTP receiver, signed webhooks to a receiver that fails the
first N attempts (property 26); retries with backoff, attempts recorded, dead letters; a stop
during a delivery that lets it finish (recorded, or kept for a retry) with no connection left."""

from __future__ import annotations

import asyncio
import gc
import json
import time

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.pool import QueuePool

from control_plane.monitoring.build import Monitoring
from control_plane.monitoring.models import ChannelKind, ChannelSpec, DeliveryState
from control_plane.monitoring.senders import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from control_plane.scheduler import ManualClock
from modelyard.errors import InvalidArgument
from modelyard.storage import Database
from tests.conftest import SyncDatabase
from tests.control_plane.monitoring import helpers
from tests.control_plane.monitoring.receivers import HttpReceiver, SmtpReceiver

SECRET = "webhook-secret"


async def _channels(
    monitoring: Monitoring,
    smtp: SmtpReceiver,
    slack: HttpReceiver,
    hook: HttpReceiver,
    suffix: str = "",
) -> None:
    alerts = monitoring.alerts
    await alerts.add_channel(
        ChannelSpec(name=f"mail{suffix}", kind=ChannelKind.EMAIL, target="ops@example.com")
    )
    await alerts.add_channel(
        ChannelSpec(name=f"slack{suffix}", kind=ChannelKind.SLACK, target=slack.url)
    )
    await alerts.add_channel(
        ChannelSpec(name=f"hook{suffix}", kind=ChannelKind.WEBHOOK, target=hook.url, secret=SECRET)
    )


async def _dispatch_until_settled(
    monitoring: Monitoring, clock: ManualClock, alert_id: int | None = None
) -> int:
    """Attempt due deliveries, moving the clock past each backoff, until none is pending."""
    passes = 0
    while [
        d
        for d in await monitoring.alerts.deliveries(alert_id=alert_id)
        if d.state is DeliveryState.PENDING
    ]:
        await monitoring.notifier.dispatch_due()
        clock.advance(seconds=20)  # past the largest backoff (capped at 10 s)
        passes += 1
        assert passes < 20
    return passes


def _check_webhook_request(request_body: bytes, headers: dict[str, str], model: str) -> None:
    timestamp = headers[TIMESTAMP_HEADER.lower()]
    assert headers[SIGNATURE_HEADER.lower()] == signature(SECRET, timestamp, request_body)
    payload = json.loads(request_body)
    assert payload["event"] == "alert"
    assert payload["alert"]["model"] == model
    assert payload["alert"]["details"][0]["feature"] == "tenure"
    assert payload["alert"]["details"][0]["threshold"] == 0.05


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(failures=st.integers(0, 4), max_attempts=st.integers(1, 4))
def test_property_26_alert_notifications_are_sent(
    sync_database: SyncDatabase, failures: int, max_attempts: int
) -> None:
    run = sync_database.run
    smtp, slack, hook = SmtpReceiver(), HttpReceiver(), HttpReceiver(fail_first=failures)
    for receiver in (smtp, slack, hook):
        run(receiver.start())
    try:
        config = helpers.settings(smtp.port, notify_max_attempts=max_attempts)
        monitoring, clock = helpers.build(sync_database.database, config)
        suffix = sync_database.unique("-")
        model = sync_database.unique("m")
        run(_channels(monitoring, smtp, slack, hook, suffix))
        alert, new = run(monitoring.alerts.raise_alert(helpers.drift_candidate(model=model)))
        assert new
        run(_dispatch_until_settled(monitoring, clock, alert.id))
        deliveries = {d.channel: d for d in run(monitoring.alerts.deliveries(alert_id=alert.id))}
        for name in deliveries:  # later examples bring their own receivers
            run(monitoring.alerts.delete_channel(name))
    finally:
        for receiver in (smtp, slack, hook):
            run(receiver.stop())
    # e-mail and Slack succeed at once
    assert deliveries[f"mail{suffix}"].state is DeliveryState.DELIVERED
    [message] = smtp.messages
    assert model in str(message["Subject"])
    assert "tenure: ks 0.31" in message.get_content()
    assert deliveries[f"slack{suffix}"].state is DeliveryState.DELIVERED
    [slack_request] = slack.requests
    assert "tenure: ks 0.31 (threshold 0.05) FLAGGED" in json.loads(slack_request.body)["text"]
    # the webhook: delivered after `failures` retries, or dead-lettered past the limit
    webhook = deliveries[f"hook{suffix}"]
    expected_attempts = min(failures + 1, max_attempts)
    assert len(hook.requests) == expected_attempts == webhook.attempts == len(webhook.history)
    outcomes = [False] * min(failures, max_attempts) + [True] * (failures < max_attempts)
    assert [a.ok for a in webhook.history] == outcomes
    for request in hook.requests:
        _check_webhook_request(request.body, request.headers, model)
    if failures < max_attempts:
        assert webhook.state is DeliveryState.DELIVERED
    else:
        assert webhook.state is DeliveryState.DEAD
        assert "HTTP 500" in (webhook.last_error or "")
        dead = run(monitoring.alerts.deliveries(state=DeliveryState.DEAD))
        assert webhook.id in [d.id for d in dead]


async def test_retries_back_off_exponentially_with_jitter(database: Database) -> None:
    smtp = SmtpReceiver(fail_first=3)
    await smtp.start()
    try:
        config = helpers.settings(
            smtp.port, notify_max_attempts=5, notify_backoff_s=2.0, notify_backoff_max_s=100.0
        )
        monitoring, clock = helpers.build(database, config)
        await monitoring.alerts.add_channel(
            ChannelSpec(name="mail", kind=ChannelKind.EMAIL, target="ops@example.com")
        )
        await monitoring.alerts.raise_alert(helpers.drift_candidate())
        gaps = []
        for _ in range(4):
            assert await monitoring.notifier.dispatch_due() == 1
            [delivery] = await monitoring.alerts.deliveries()
            gap = (delivery.next_attempt_at - clock.now).total_seconds()
            gaps.append(gap)
            assert await monitoring.notifier.dispatch_due() == 0  # not due before the backoff
            clock.advance(seconds=gap)
    finally:
        await smtp.stop()
    assert delivery.state is DeliveryState.DELIVERED
    assert delivery.attempts == 4
    # attempt n waits 2 * 2**(n-1) s times a jitter in [0.5, 1]
    for n, gap in enumerate(gaps[:3], start=1):
        assert 2.0 * 2 ** (n - 1) * 0.5 <= gap <= 2.0 * 2 ** (n - 1)
    assert "451" in (delivery.history[0].error or "")
    assert monitoring.metrics.attempts.labels("email", "error")._value.get() == 3
    assert monitoring.metrics.notifications.labels("email", "delivered")._value.get() == 1


async def test_the_background_dispatcher_sends_new_alerts_at_once(database: Database) -> None:
    hook = HttpReceiver()
    await hook.start()
    config = helpers.settings(notify_poll_s=30.0)  # only the wake-up can explain a fast send
    monitoring = helpers.build_monitoring_real_clock(database, config)
    await monitoring.notifier.start()
    try:
        await monitoring.alerts.add_channel(
            ChannelSpec(name="hook", kind=ChannelKind.WEBHOOK, target=hook.url)
        )
        await monitoring.alerts.raise_alert(helpers.drift_candidate())
        deadline = time.monotonic() + 20
        while not hook.requests:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await monitoring.notifier.stop()
        await hook.stop()
    assert SIGNATURE_HEADER.lower() not in hook.requests[0].headers  # no secret: unsigned
    assert msgspec.json.decode(hook.requests[0].body)["alert"]["type"] == "drift"


async def test_a_deleted_channel_dead_letters_its_delivery(database: Database) -> None:
    monitoring, _ = helpers.build(database, helpers.settings())
    await monitoring.alerts.add_channel(
        ChannelSpec(name="gone", kind=ChannelKind.WEBHOOK, target="http://127.0.0.1:9/x")
    )
    await monitoring.alerts.raise_alert(helpers.drift_candidate())
    await monitoring.alerts.delete_channel("gone")
    await monitoring.notifier.dispatch_due()
    [delivery] = await monitoring.alerts.deliveries(state=DeliveryState.DEAD)
    assert "no longer exists" in (delivery.last_error or "")


async def test_a_target_the_http_client_refuses_is_refused_when_the_channel_is_made(
    database: Database,
) -> None:
    monitoring, _ = helpers.build(database, helpers.settings())
    for target, named in [
        ("http://hooks.example.com:8O80/x", "could not be cast to integer"),
        ("http://hooks.example.com:99999/x", "out of range"),
    ]:
        with pytest.raises(InvalidArgument, match=named):
            await monitoring.alerts.add_channel(
                ChannelSpec(name="typo", kind=ChannelKind.WEBHOOK, target=target)
            )


async def test_an_unexpected_sender_error_is_an_attempt_and_dead_letters(
    database: Database,
) -> None:
    """A channel stored before its target was checked (an earlier release): httpx raises
    InvalidURL, not a DeliveryFailed. Before, the attempt was never recorded and the delivery
    was claimed again after every lease, forever."""
    clock = ManualClock(helpers.T0)
    monitoring, _ = helpers.build(database, helpers.settings(), clock=clock)
    spec = ChannelSpec(name="old", kind=ChannelKind.WEBHOOK, target="http://h.example:8O80/x")
    async with database.write() as conn:
        await monitoring.alerts._store.add_channel(conn, spec, clock())
    await monitoring.alerts.raise_alert(helpers.drift_candidate())
    await _dispatch_until_settled(monitoring, clock)
    [delivery] = await monitoring.alerts.deliveries(state=DeliveryState.DEAD)
    assert delivery.attempts == helpers.settings().notify_max_attempts
    assert "InvalidURL: Invalid port" in (delivery.last_error or "")


async def test_a_reply_with_a_nul_is_recorded_and_dead_letters(database: Database) -> None:
    """A receiver's error reply is kept in the attempt's error. With a NUL in it, PostgreSQL
    refused the write: the attempt was never recorded, and the delivery was claimed and sent
    again at the end of every lease, forever (SQLite stored it)."""
    hook = HttpReceiver(answer=lambda request: (500, b"bad\x00reply"))
    await hook.start()
    try:
        clock = ManualClock(helpers.T0)
        monitoring, _ = helpers.build(database, helpers.settings(), clock=clock)
        await monitoring.alerts.add_channel(
            ChannelSpec(name="nul", kind=ChannelKind.WEBHOOK, target=hook.url)
        )
        await monitoring.alerts.raise_alert(helpers.drift_candidate())
        await _dispatch_until_settled(monitoring, clock)
    finally:
        await hook.stop()
    [delivery] = await monitoring.alerts.deliveries(state=DeliveryState.DEAD)
    assert delivery.attempts == len(hook.requests) == helpers.settings().notify_max_attempts
    assert "HTTP 500: bad\\x00reply" in (delivery.last_error or "")


def _assert_no_connection_left(database: Database) -> None:
    """Every pooled connection came back, and none is left for the garbage collector to find
    unclosed (a ResourceWarning, an error in these tests)."""
    pool = database.engine.pool
    assert isinstance(pool, QueuePool)
    assert pool.checkedout() == 0
    gc.collect()


@pytest.mark.filterwarnings("error::ResourceWarning")
async def test_stop_during_a_delivery_lets_it_finish_and_be_recorded(database: Database) -> None:
    hold = asyncio.Event()
    hook = HttpReceiver(hold=hold)
    await hook.start()
    config = helpers.settings(notify_poll_s=30.0)
    monitoring = helpers.build_monitoring_real_clock(database, config)
    try:
        await monitoring.alerts.add_channel(
            ChannelSpec(name="hook", kind=ChannelKind.WEBHOOK, target=hook.url)
        )
        await monitoring.alerts.raise_alert(helpers.drift_candidate())
        await monitoring.notifier.start()
        async with asyncio.timeout(20):
            await hook.arrived.wait()  # the delivery is in flight: the receiver holds it
        stopping = asyncio.create_task(monitoring.notifier.stop())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not stopping.done(), "stop() returned while a delivery was in flight"
        hold.set()
        async with asyncio.timeout(monitoring.notifier.stop_wait_s()):
            await stopping
    finally:
        hold.set()
        await monitoring.notifier.stop()
        await hook.stop()
    [delivery] = await monitoring.alerts.deliveries()
    assert (delivery.state, delivery.attempts, len(hook.requests)) == (
        DeliveryState.DELIVERED,
        1,
        1,
    )
    _assert_no_connection_left(database)


@pytest.mark.filterwarnings("error::ResourceWarning")
async def test_stop_during_a_delivery_that_times_out_keeps_it_for_a_retry(
    database: Database,
) -> None:
    hold = asyncio.Event()
    hook = HttpReceiver(hold=hold)
    await hook.start()
    monitoring, clock = helpers.build(database, helpers.settings(notify_timeout_s=0.5))
    try:
        await monitoring.alerts.add_channel(
            ChannelSpec(name="hook", kind=ChannelKind.WEBHOOK, target=hook.url)
        )
        await monitoring.alerts.raise_alert(helpers.drift_candidate())
        await monitoring.notifier.start()
        async with asyncio.timeout(20):
            await hook.arrived.wait()
        await monitoring.notifier.stop()  # returns once the attempt timed out and was recorded
        [delivery] = await monitoring.alerts.deliveries()
        assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
        assert "Timeout" in (delivery.last_error or "")
        hook.hold = None
        hold.set()
        clock.advance(seconds=20)  # past the backoff
        assert await monitoring.notifier.dispatch_due() == 1
    finally:
        hold.set()
        await monitoring.notifier.stop()
        await hook.stop()
    [delivery] = await monitoring.alerts.deliveries()
    assert (delivery.state, delivery.attempts, len(hook.requests)) == (
        DeliveryState.DELIVERED,
        2,
        2,
    )
    _assert_no_connection_left(database)
