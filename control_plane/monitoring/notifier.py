"""Delivery of alert notifications: routing, attempts, retries with backoff, dead letters.

When an alert opens, :meth:`Notifier.route` writes one *delivery* per channel that accepts it
(type and minimum severity) in the alert's transaction, then wakes the dispatcher. The
dispatcher -- one owned background task -- claims due deliveries (a lease, so replicas never
send one twice at a time), sends them concurrently, and records every attempt. A failed
attempt is retried after :func:`backoff_delay`; after ``notify_max_attempts`` failures the
delivery is *dead* (a dead letter, listed over REST). Deliveries live in the database, so
retries survive a restart.

Stopping signals the dispatcher and lets the pass in progress finish: its attempts are sent
and recorded, and no database call is cut off with its connection checked out (cancelling a
pass mid-I/O leaked an asyncpg connection in the scheduler). Only a pass that outlives a
bounded wait is cancelled; the deliveries it had claimed are retried when their lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from control_plane.background import run_every
from control_plane.monitoring.models import (
    Alert,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
)
from control_plane.monitoring.senders import DeliveryFailed, EmailSender, HttpSender, Sender
from control_plane.scheduler.scheduler import utc_now

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from control_plane.monitoring.metrics import MonitoringMetrics
    from control_plane.monitoring.store import MonitoringStore
    from modelyard.settings import MonitoringSettings
    from modelyard.storage import Database

log = logging.getLogger(__name__)
BATCH = 50


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, with
    "equal jitter" (50-100% of the step) so replicas' retries spread out.

    >>> rng = random.Random(7)
    >>> [round(backoff_delay(n, 1.0, 10.0, rng), 2) for n in (1, 2, 3, 4, 5)]
    [0.66, 1.15, 3.3, 4.29, 7.68]
    """
    step = min(max_s, base_s * 2 ** (attempt - 1))
    return float(step * (0.5 + rng.random() / 2))


class Notifier:
    """Routes alerts to channels and delivers them with retries.

    Args:
        database: the platform database.
        store: the monitoring store.
        settings: retry, backoff and SMTP settings.
        metrics: the Prometheus counters.
        senders: one sender per channel kind (SMTP and HTTP by default).
        clock: the wall clock (UTC).
        rng: the jitter's random source.
    """

    def __init__(
        self,
        database: Database,
        store: MonitoringStore,
        settings: MonitoringSettings,
        metrics: MonitoringMetrics,
        *,
        senders: dict[ChannelKind, Sender] | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._database = database
        self._store = store
        self._settings = settings
        self._metrics = metrics
        http = HttpSender(settings)
        self._senders: dict[ChannelKind, Sender] = senders or {
            ChannelKind.EMAIL: EmailSender(settings),
            ChannelKind.SLACK: http,
            ChannelKind.WEBHOOK: http,
        }
        self._clock = clock
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    async def route(self, conn: AsyncConnection, alert: Alert) -> list[str]:
        """Queue ``alert`` for every channel that accepts it (in the caller's transaction).

        Returns:
            The names of those channels.
        """
        channels = [c.name for c in await self._store.channels(conn) if c.accepts(alert)]
        await self._store.add_deliveries(conn, alert.id, channels, self._clock())
        return channels

    def wake(self) -> None:
        """Look for due deliveries now (after new alerts commit)."""
        self._wake.set()

    async def start(self) -> None:
        """Start the dispatcher (idempotent)."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name="notifier")

    async def stop(self) -> None:
        """Stop the dispatcher once the pass in progress has finished.

        Attempts in flight are sent and recorded. Only a pass still running after
        :meth:`stop_wait_s` is cancelled; the deliveries it had claimed stay pending and are
        retried when their lease ends.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        # NOTE: shielded, so a cancelled stop() leaves the loop to end after its pass too.
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=self.stop_wait_s())
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def stop_wait_s(self) -> float:
        """How long :meth:`stop` waits for a pass: its sends (each bounded by
        ``notify_timeout_s`` per network step) and its database writes."""
        return 2 * self._settings.notify_timeout_s + 5.0

    async def _loop(self) -> None:
        await run_every(
            self.dispatch_due,
            interval_s=self._settings.notify_poll_s,
            wake=self._wake,
            stopping=lambda: self._stopping,
            failure="notification dispatch failed",
            logger=log,
        )

    async def dispatch_due(self) -> int:
        """One pass: claim due deliveries and attempt each once.

        Returns:
            How many attempts were made.
        """
        lease_s = self._settings.notify_timeout_s * 3 + 30
        async with self._database.write() as conn:
            due = await self._store.claim_deliveries(conn, self._clock(), lease_s, BATCH)
            channels = {c.name: c for c in await self._store.channels(conn)}
            secrets = {
                name: await self._store.channel_secret(conn, name) or ""
                for name in {d.channel for d in due}
            }
        await asyncio.gather(
            *(self._attempt(d, channels.get(d.channel), secrets.get(d.channel, "")) for d in due)
        )
        return len(due)

    async def _attempt(self, delivery: Delivery, channel: Channel | None, secret: str) -> None:
        started, error = time.monotonic(), None
        async with self._database.read() as conn:
            alert = await self._store.get_alert(conn, delivery.alert_id)
        try:
            if channel is None or alert is None:
                raise DeliveryFailed(f"channel {delivery.channel!r} no longer exists")
            await self._senders[channel.kind].send(channel, secret, alert)
        except DeliveryFailed as failure:
            error = failure.message
        except Exception as exc:  # NOTE: anything else (a sender's bug, a channel stored before
            # its validation) is an attempt that failed too: recorded, retried, dead-lettered
            log.exception(
                "notification %s to %s failed unexpectedly", delivery.id, delivery.channel
            )
            error = f"{type(exc).__name__}: {exc}"
        await self._record(delivery, channel, error, (time.monotonic() - started) * 1000)

    async def _record(
        self, delivery: Delivery, channel: Channel | None, error: str | None, ms: float
    ) -> None:
        number, now = delivery.attempts + 1, self._clock()
        state, next_at = DeliveryState.DELIVERED, now
        if error is not None:
            state = DeliveryState.PENDING
            if number >= self._settings.notify_max_attempts or channel is None:
                state = DeliveryState.DEAD
            s = self._settings
            delay = backoff_delay(number, s.notify_backoff_s, s.notify_backoff_max_s, self._rng)
            next_at = now + dt.timedelta(seconds=delay)
        attempt = DeliveryAttempt(
            delivery_id=delivery.id,
            attempt=number,
            at=now,
            ok=error is None,
            error=error,
            duration_ms=ms,
        )
        async with self._database.write() as conn:
            await self._store.record_attempt(conn, attempt, state, next_at)
        kind = channel.kind.value if channel is not None else "unknown"
        self._metrics.attempts.labels(kind, "ok" if error is None else "error").inc()
        if state is not DeliveryState.PENDING:
            self._metrics.notifications.labels(kind, state.value).inc()
        if state is DeliveryState.DEAD:
            log.warning("notification %s to %s dead-lettered: %s", delivery.id, kind, error)


__all__ = ["Notifier", "backoff_delay"]
