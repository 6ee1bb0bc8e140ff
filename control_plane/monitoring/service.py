"""Monitoring's rules for alerts and channels, behind both the REST controller and the CLI.

- De-duplication: reports share a key (type, model, version, source). A report whose key
  has an alert that is still open or acknowledged folds into it (``occurrences`` + 1, details
  and window end refreshed) and notifies nobody, so persistent drift does not spam. A report
  after that alert was resolved folds in too while the cool-down (``alert_cooldown_s`` since it
  was last seen) lasts; after it, a new alert opens and is notified.
- Lifecycle: open -> acknowledged -> resolved, or open -> resolved; a resolved alert is final.
- A new alert and its deliveries commit in one transaction; then the dispatcher is woken and
  every subscriber (:meth:`AlertService.subscribe`; retraining listens for drift and
  performance alerts) is called with it. A failing subscriber is logged, never fails the
  alert.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import httpx

from control_plane.monitoring.models import (
    Alert,
    AlertCandidate,
    AlertState,
    AlertType,
    Channel,
    ChannelKind,
    ChannelSpec,
    Delivery,
    DeliveryState,
)
from control_plane.scheduler.scheduler import utc_now
from modelyard.errors import FailedPrecondition, InvalidArgument, NotFound
from modelyard.models import NAME_PATTERN

if TYPE_CHECKING:
    from control_plane.monitoring.metrics import MonitoringMetrics
    from control_plane.monitoring.notifier import Notifier
    from control_plane.monitoring.store import MonitoringStore
    from modelyard.storage import Database

log = logging.getLogger(__name__)
MAX_PAGE = 1000
AlertListener = Callable[[Alert], Awaitable[None]]
_CHANNEL_NAME = re.compile(NAME_PATTERN)  # NOTE: ``\Z``: "ch\n" was accepted with ``$``
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\Z")


class AlertService:
    """Alerts with de-duplication and a lifecycle; channels that receive them.

    Args:
        database: the platform database.
        store: the monitoring store.
        notifier: routes new alerts to channels and delivers them.
        metrics: the Prometheus counters.
        cooldown_s: see the module docstring.
        clock: the wall clock (UTC).
    """

    def __init__(
        self,
        database: Database,
        store: MonitoringStore,
        notifier: Notifier,
        metrics: MonitoringMetrics,
        *,
        cooldown_s: float,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._database = database
        self._store = store
        self._notifier = notifier
        self._metrics = metrics
        self._cooldown = dt.timedelta(seconds=cooldown_s)
        self._clock = clock
        self._listeners: list[AlertListener] = []

    def subscribe(self, listener: AlertListener) -> None:
        """Call ``listener`` with every new alert (not with repeats folded into one)."""
        self._listeners.append(listener)

    async def _announce(self, alert: Alert) -> None:
        for listener in self._listeners:
            try:
                await listener(alert)
            except Exception:  # NOTE: a subscriber's failure must not undo the alert.
                log.exception("alert listener %r failed on alert %s", listener, alert.id)

    async def raise_alert(self, candidate: AlertCandidate) -> tuple[Alert, bool]:
        """Open an alert for ``candidate``, or fold it into the alert it repeats.

        Returns:
            The alert and whether it is new (and therefore notified).
        """
        key = f"{candidate.type.value}:{candidate.model}:{candidate.version}:{candidate.source}"
        now = self._clock()
        async with self._database.write() as conn:
            await self._store.lock_key(conn, key)
            latest = await self._store.latest_alert(conn, key)
            if latest is not None and self._absorbs(latest, now):
                await self._store.absorb(conn, latest.id, candidate, now)
                alert = await self._store.get_alert(conn, latest.id)
                new = False
            else:
                alert = await self._store.add_alert(conn, candidate, key, now)
                await self._notifier.route(conn, alert)
                new = True
        if alert is None:
            raise NotFound("alert", str(latest.id if latest else "?"))
        if new:
            self._metrics.alerts.labels(alert.type.value, alert.severity.value).inc()
            self._notifier.wake()
            await self._announce(alert)
        else:
            self._metrics.suppressed.labels(alert.type.value).inc()
        return alert, new

    def _absorbs(self, latest: Alert, now: dt.datetime) -> bool:
        if latest.state is not AlertState.RESOLVED:
            return True
        return now - latest.last_seen_at < self._cooldown

    async def get_alert(self, alert_id: int) -> Alert:
        """One alert.

        Raises:
            NotFound: no alert has that id.
        """
        async with self._database.read() as conn:
            alert = await self._store.get_alert(conn, alert_id)
        if alert is None:
            raise NotFound("alert", str(alert_id))
        return alert

    async def list_alerts(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        state: AlertState | None = None,
        type: AlertType | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        """Alerts matching the filters, newest first."""
        filters = {
            "model": model,
            "version": version,
            "state": state.value if state else None,
            "type": type.value if type else None,
        }
        async with self._database.read() as conn:
            return await self._store.list_alerts(conn, filters, min(limit, MAX_PAGE), offset)

    async def acknowledge(self, alert_id: int, *, actor: str) -> Alert:
        """Mark an open alert acknowledged (again: no change).

        Raises:
            NotFound: no alert has that id.
            FailedPrecondition: the alert is resolved.
        """
        return await self._transition(alert_id, AlertState.ACKNOWLEDGED, actor)

    async def resolve(self, alert_id: int, *, actor: str) -> Alert:
        """Mark an alert resolved.

        Raises:
            NotFound: no alert has that id.
            FailedPrecondition: the alert is already resolved.
        """
        return await self._transition(alert_id, AlertState.RESOLVED, actor)

    async def _transition(self, alert_id: int, to: AlertState, actor: str) -> Alert:
        async with self._database.write() as conn:
            alert = await self._store.get_alert(conn, alert_id)
            if alert is None:
                raise NotFound("alert", str(alert_id))
            if alert.state is AlertState.RESOLVED:
                raise FailedPrecondition(f"alert {alert_id} is resolved")
            if alert.state is not to:
                await self._store.set_state(conn, alert_id, to, actor, self._clock())
            updated = await self._store.get_alert(conn, alert_id)
        assert updated is not None  # NOTE: read in the same transaction
        return updated

    async def add_channel(self, spec: ChannelSpec) -> Channel:
        """Create a notification channel.

        Raises:
            InvalidArgument: bad name, or a target that does not fit the kind.
            AlreadyExists: a channel of that name exists.
        """
        _check_channel(spec)
        async with self._database.write() as conn:
            await self._store.add_channel(conn, spec, self._clock())
        return next(c for c in await self.channels() if c.name == spec.name)

    async def delete_channel(self, name: str) -> None:
        """Delete a channel (its pending deliveries are dead-lettered at their next attempt).

        Raises:
            NotFound: no channel of that name.
        """
        async with self._database.write() as conn:
            if not await self._store.delete_channel(conn, name):
                raise NotFound("notification channel", name)

    async def channels(self) -> list[Channel]:
        """Every channel, by name (secrets never shown)."""
        async with self._database.read() as conn:
            return await self._store.channels(conn)

    async def deliveries(
        self,
        *,
        state: DeliveryState | None = None,
        alert_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries with every attempt; ``state=dead`` lists the dead letters."""
        async with self._database.read() as conn:
            return await self._store.deliveries(
                conn, state=state, alert_id=alert_id, limit=min(limit, MAX_PAGE)
            )


def _check_channel(spec: ChannelSpec) -> None:
    if not _CHANNEL_NAME.match(spec.name):
        raise InvalidArgument(
            f"channel name {spec.name!r} must be 1-128 letters, digits, '_', '.', '-'"
        )
    if spec.kind is ChannelKind.EMAIL:
        addresses = [a.strip() for a in spec.target.split(",") if a.strip()]
        bad = [a for a in addresses if not _EMAIL.match(a)]
        if not addresses or bad:
            raise InvalidArgument(f"email channel target {spec.target!r}: invalid address(es)")
        return
    try:  # NOTE: and what the sender's HTTP client would refuse at every attempt (a bad port)
        url = urlparse(spec.target)
        _ = url.port
        httpx.URL(spec.target)
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidArgument(f"{spec.kind.value} channel target {spec.target!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.netloc:
        raise InvalidArgument(
            f"{spec.kind.value} channel target {spec.target!r}: not an http(s) URL"
        )


__all__ = ["MAX_PAGE", "AlertListener", "AlertService"]
