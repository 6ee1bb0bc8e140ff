"""``modelyard monitoring alerts|alert|ack|resolve|channels|add-channel|delete-channel|
dead-letters|reference|check|reports|report|jobs|run-job``.

Every command speaks the control plane's REST API: to ``--url``, or in-process over the local
store (:mod:`control_plane.cli_client`). Changes need an API token (``--token`` or
``control_plane.token``); channel changes need an admin token. Answers print as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from control_plane.cli_client import TOKEN_OPTION, URL_OPTION, echo_json, request
from control_plane.monitoring.models import AlertState, AlertType, ChannelKind, Severity
from control_plane.monitoring.samples import read_sample

URL = URL_OPTION
TOKEN = TOKEN_OPTION


def _request(
    url: str | None,
    token: str | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """One REST call through the shared client (``--url`` or the in-process app)."""
    return request(url, token, method, path, body=body, params=params)


@click.group("monitoring")
def monitoring() -> None:
    """Alerts, notification channels, dead letters and the scheduler's jobs."""


@monitoring.command("alerts")
@click.option("--model", default=None)
@click.option("--version", type=int, default=None)
@click.option("--state", type=click.Choice([s.value for s in AlertState]), default=None)
@click.option("--type", "type_", type=click.Choice([t.value for t in AlertType]), default=None)
@click.option("--limit", type=int, default=100, show_default=True)
@URL
def list_alerts(
    model: str | None,
    version: int | None,
    state: str | None,
    type_: str | None,
    limit: int,
    url: str | None,
) -> None:
    """List alerts, newest first."""
    params = {"model": model, "version": version, "state": state, "type": type_, "limit": limit}
    echo_json(_request(url, None, "GET", "/v1/monitoring/alerts", params=params))


@monitoring.command("alert")
@click.argument("alert_id", type=int)
@URL
def get_alert(alert_id: int, url: str | None) -> None:
    """Show one alert with its deliveries."""
    alert = _request(url, None, "GET", f"/v1/monitoring/alerts/{alert_id}")
    deliveries = _request(url, None, "GET", f"/v1/monitoring/alerts/{alert_id}/deliveries")
    echo_json({"alert": alert, "deliveries": deliveries})


@monitoring.command("ack")
@click.argument("alert_id", type=int)
@URL
@TOKEN
def acknowledge(alert_id: int, url: str | None, token: str | None) -> None:
    """Acknowledge an open alert."""
    echo_json(_request(url, token, "POST", f"/v1/monitoring/alerts/{alert_id}/acknowledge"))


@monitoring.command("resolve")
@click.argument("alert_id", type=int)
@URL
@TOKEN
def resolve(alert_id: int, url: str | None, token: str | None) -> None:
    """Resolve an alert."""
    echo_json(_request(url, token, "POST", f"/v1/monitoring/alerts/{alert_id}/resolve"))


@monitoring.command("channels")
@URL
def list_channels(url: str | None) -> None:
    """List notification channels."""
    echo_json(_request(url, None, "GET", "/v1/monitoring/channels"))


@monitoring.command("add-channel")
@click.argument("name")
@click.option("--kind", type=click.Choice([k.value for k in ChannelKind]), required=True)
@click.option("--target", required=True, help="E-mail addresses (comma-separated) or a URL.")
@click.option("--secret", default="", help="Webhook signing secret (HMAC-SHA256).")
@click.option("--type", "types", multiple=True, type=click.Choice([t.value for t in AlertType]))
@click.option("--min-severity", type=click.Choice([s.value for s in Severity]), default="info")
@URL
@TOKEN
def add_channel(
    name: str,
    kind: str,
    target: str,
    secret: str,
    types: tuple[str, ...],
    min_severity: str,
    url: str | None,
    token: str | None,
) -> None:
    """Create a notification channel (admin)."""
    body = {
        "name": name,
        "kind": kind,
        "target": target,
        "secret": secret,
        "types": list(types),
        "min_severity": min_severity,
    }
    echo_json(_request(url, token, "POST", "/v1/monitoring/channels", body=body))


@monitoring.command("delete-channel")
@click.argument("name")
@URL
@TOKEN
def delete_channel(name: str, url: str | None, token: str | None) -> None:
    """Delete a notification channel (admin)."""
    _request(url, token, "DELETE", f"/v1/monitoring/channels/{name}")
    click.echo(f"deleted channel {name}")


@monitoring.command("dead-letters")
@URL
def dead_letters(url: str | None) -> None:
    """Deliveries that failed every attempt, with the attempts."""
    echo_json(_request(url, None, "GET", "/v1/monitoring/dead-letters"))


@monitoring.command("jobs")
@URL
def jobs(url: str | None) -> None:
    """The scheduler's periodic jobs: schedule, next run, lease, last run."""
    echo_json(_request(url, None, "GET", "/v1/scheduler/jobs"))


@monitoring.command("run-job")
@click.argument("name")
@URL
@TOKEN
def run_job(name: str, url: str | None, token: str | None) -> None:
    """Make a periodic job due now (admin)."""
    echo_json(_request(url, token, "POST", f"/v1/scheduler/jobs/{name}/run"))


@monitoring.command("reference")
@click.argument("model")
@click.argument("version", type=int)
@click.option(
    "--sample",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The training sample (CSV or Parquet), one column per feature.",
)
@click.option("--score-column", default=None, help="Column holding the model's score.")
@URL
@TOKEN
def set_reference(
    model: str,
    version: int,
    sample: Path,
    score_column: str | None,
    url: str | None,
    token: str | None,
) -> None:
    """Store a version's reference profile, built from its training sample."""
    body = read_sample(sample, score_column)
    profile = _request(
        url, token, "PUT", f"/v1/monitoring/models/{model}/versions/{version}/reference", body=body
    )
    click.echo(
        f"reference of {model} v{version}: {profile['rows']} rows, "
        f"{len(profile['features'])} features"
    )


@monitoring.command("check")
@click.argument("model")
@click.argument("version", type=int)
@click.option("--window-s", type=float, default=None, help="Window length (default: settings).")
@URL
@TOKEN
def check(
    model: str, version: int, window_s: float | None, url: str | None, token: str | None
) -> None:
    """Check drift now over the last window; prints the stored report."""
    body = {"window_s": window_s} if window_s else {}
    path = f"/v1/monitoring/models/{model}/versions/{version}/drift-checks"
    echo_json(_request(url, token, "POST", path, body=body))


@monitoring.command("reports")
@click.option("--model", default=None)
@click.option("--version", type=int, default=None)
@click.option("--limit", type=int, default=20, show_default=True)
@URL
def reports(model: str | None, version: int | None, limit: int, url: str | None) -> None:
    """Drift reports, newest first."""
    params = {"model": model, "version": version, "limit": limit}
    echo_json(_request(url, None, "GET", "/v1/monitoring/drift-reports", params=params))
