"""Monitoring's shapes: alerts with feature-level details, notification channels, deliveries."""

from __future__ import annotations

import datetime as dt
import enum

import msgspec

from modelyard.models import Text


class AlertType(enum.Enum):
    """What an alert is about."""

    DRIFT = "drift"
    """A periodic drift check found the data drifted (property 23)."""
    STREAMING_DRIFT = "streaming_drift"
    """A streaming detector (ADWIN, Page-Hinkley, KSWIN) fired between periodic checks."""
    PERFORMANCE_DEGRADATION = "performance_degradation"
    """A tracked metric fell beyond its threshold below the registration baseline (25)."""


class Severity(enum.Enum):
    """How urgent an alert is; channels subscribe from a minimum severity up."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order: info < warning < critical."""
        return list(Severity).index(self)


class AlertState(enum.Enum):
    """Lifecycle: open -> acknowledged -> resolved (open -> resolved is allowed too)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class ChannelKind(enum.Enum):
    """How a channel is reached."""

    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"


class DeliveryState(enum.Enum):
    """A notification's fate: pending (retrying), delivered, or dead (dead-lettered)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class _Input(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of shapes decoded from outside input: unknown fields are errors."""


class FeatureDetail(msgspec.Struct, kw_only=True, frozen=True):
    """One feature's (or metric's) finding: the score, the threshold, and the verdict."""

    feature: str
    method: str
    score: float
    """The statistic or distance (drift), or the metric value (performance)."""
    threshold: float
    flagged: bool
    p_value: float | None = None
    baseline: float | None = None
    """For performance alerts: the registration baseline the metric is compared with."""


class AlertCandidate(msgspec.Struct, kw_only=True, frozen=True):
    """What a check reports; :class:`~control_plane.monitoring.alerts.AlertService` de-dups it."""

    type: AlertType
    severity: Severity
    model: str
    version: int
    window_start: dt.datetime
    window_end: dt.datetime
    summary: str
    details: tuple[FeatureDetail, ...] = ()
    source: str = ""
    """What raised it (a report id, a detector name); part of the de-dup key when set."""


class Alert(msgspec.Struct, kw_only=True, frozen=True):
    """A stored alert."""

    id: int
    type: AlertType
    severity: Severity
    model: str
    version: int
    window_start: dt.datetime
    window_end: dt.datetime
    summary: str
    details: tuple[FeatureDetail, ...]
    dedup_key: str
    state: AlertState
    occurrences: int
    """How many reports this alert absorbed (1 + those suppressed by de-duplication)."""
    created_at: dt.datetime
    last_seen_at: dt.datetime
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: dt.datetime | None = None
    resolved_by: str | None = None


class ChannelSpec(_Input, kw_only=True, frozen=True):
    """A notification channel as created over REST or the CLI.

    ``target`` is a comma-separated list of e-mail addresses (email) or an http(s) URL (Slack
    incoming webhook, generic webhook). ``secret`` signs webhook bodies (HMAC-SHA256).
    Routing: the channel receives alerts whose type is in ``types`` (all when empty) and whose
    severity is at least ``min_severity``.
    """

    name: str
    kind: ChannelKind
    target: str
    secret: Text = ""
    types: tuple[AlertType, ...] = ()
    min_severity: Severity = Severity.INFO
    enabled: bool = True


class Channel(msgspec.Struct, kw_only=True, frozen=True):
    """A stored channel (the secret is never shown: ``signed`` says whether one is set)."""

    name: str
    kind: ChannelKind
    target: str
    types: tuple[AlertType, ...]
    min_severity: Severity
    enabled: bool
    signed: bool
    created_at: dt.datetime

    def accepts(self, alert: Alert) -> bool:
        """Whether ``alert`` is routed to this channel."""
        return (
            self.enabled
            and (not self.types or alert.type in self.types)
            and alert.severity.rank >= self.min_severity.rank
        )


class Delivery(msgspec.Struct, kw_only=True, frozen=True):
    """One alert to one channel, with its retry state."""

    id: int
    alert_id: int
    channel: str
    state: DeliveryState
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    history: tuple[DeliveryAttempt, ...] = ()
    """Every attempt, oldest first (filled by listings that ask for it)."""


class DeliveryAttempt(msgspec.Struct, kw_only=True, frozen=True):
    """One try of a delivery: when, whether it worked, and why not."""

    delivery_id: int
    attempt: int
    at: dt.datetime
    ok: bool
    error: str | None
    duration_ms: float


__all__ = [
    "Alert",
    "AlertCandidate",
    "AlertState",
    "AlertType",
    "Channel",
    "ChannelKind",
    "ChannelSpec",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryState",
    "FeatureDetail",
    "Severity",
]
