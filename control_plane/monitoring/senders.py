"""How an alert reaches a channel: e-mail over SMTP, Slack incoming webhooks, signed webhooks.

Every sender raises :class:`DeliveryFailed` with the reason when the far end did not accept
the message; the notifier records that and retries. Webhook bodies are signed like Stripe's
and GitHub's: ``X-Modelyard-Timestamp: <unix seconds>`` and ``X-Modelyard-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed with the channel's secret>``; a
receiver recomputes it (:func:`signature`) and rejects stale timestamps to stop replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import time
from email.message import EmailMessage
from typing import Protocol

import httpx
import msgspec

from control_plane.monitoring.models import Alert, Channel
from modelyard.errors import ModelyardError
from modelyard.settings import MonitoringSettings

_encoder = msgspec.json.Encoder()
SIGNATURE_HEADER = "X-Modelyard-Signature"
TIMESTAMP_HEADER = "X-Modelyard-Timestamp"


class DeliveryFailed(ModelyardError):
    """The channel did not accept the notification (the message says why)."""


class Sender(Protocol):
    """Sends one alert to one channel."""

    async def send(self, channel: Channel, secret: str, alert: Alert) -> None:
        """Deliver ``alert``.

        Raises:
            DeliveryFailed: the far end refused or could not be reached.
        """
        ...


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature header value.

    >>> signature("s3cret", "1700000000", b'{"a":1}')[:23]
    'sha256=1698a50bc74d1ff1'
    """
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def subject_of(alert: Alert) -> str:
    """A one-line title."""
    return (
        f"[modelyard {alert.severity.value}] {alert.type.value} on "
        f"{alert.model} v{alert.version}: {alert.summary}"
    )


def text_of(alert: Alert) -> str:
    """A plain-text body listing every flagged detail with its score and threshold."""
    lines = [
        subject_of(alert),
        f"alert #{alert.id}, window {alert.window_start.isoformat()} .. "
        f"{alert.window_end.isoformat()}",
    ]
    for detail in alert.details:
        mark = "FLAGGED" if detail.flagged else "ok"
        lines.append(
            f"- {detail.feature}: {detail.method} {detail.score:.4g} "
            f"(threshold {detail.threshold:.4g}) {mark}"
        )
    return "\n".join(lines)


class EmailSender:
    """E-mail over SMTP (``smtplib`` in a worker thread; STARTTLS and login when configured)."""

    def __init__(self, settings: MonitoringSettings) -> None:
        self._settings = settings

    async def send(self, channel: Channel, secret: str, alert: Alert) -> None:
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = ", ".join(a.strip() for a in channel.target.split(",") if a.strip())
        message["Subject"] = subject_of(alert)
        message.set_content(text_of(alert))
        try:
            await asyncio.to_thread(self._send, message)
        except (OSError, smtplib.SMTPException) as error:
            raise DeliveryFailed(f"SMTP: {type(error).__name__}: {error}") from None

    def _send(self, message: EmailMessage) -> None:
        s = self._settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.notify_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(message)


class HttpSender:
    """Slack incoming webhooks and generic (signed) webhooks over one HTTP client."""

    def __init__(self, settings: MonitoringSettings) -> None:
        self._timeout = settings.notify_timeout_s

    async def send(self, channel: Channel, secret: str, alert: Alert) -> None:
        if channel.kind.value == "slack":
            body = _encoder.encode({"text": text_of(alert)})
            headers = {"Content-Type": "application/json"}
        else:
            body = _encoder.encode({"event": "alert", "alert": alert})
            timestamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
            if secret:
                headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                answer = await client.post(channel.target, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"HTTP: {type(error).__name__}: {error}") from None
        if not answer.is_success:
            raise DeliveryFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")


__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "DeliveryFailed",
    "EmailSender",
    "HttpSender",
    "Sender",
    "signature",
    "subject_of",
    "text_of",
]
