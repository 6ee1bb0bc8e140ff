"""``modelyard predictions list|feedback|unpack``: read the log, record outcomes, unpack blocks.

Both go through the REST API: of a running control plane (``--url``), else of the control
plane built in-process over the local store (:mod:`control_plane.cli_client`), so the same
guards apply (``--token`` or ``control_plane.token``).
"""

from __future__ import annotations

from typing import IO, Any

import click
import msgspec

from control_plane.cli_client import TOKEN_OPTION, URL_OPTION, echo_json, request
from control_plane.predictions.models import decode_feedback
from control_plane.predictions.service import MAX_PAGE

URL = URL_OPTION
TOKEN = TOKEN_OPTION


def _run(
    url: str | None,
    token: str | None,
    method: str,
    path: str,
    *,
    body: object = None,
    params: dict[str, Any] | None = None,
) -> None:
    """One REST call through the shared client (``--url`` or the in-process app)."""
    echo_json(request(url, token, method, path, body=body, params=params))


@click.group("predictions")
def predictions() -> None:
    """The prediction log: logged rows and their outcomes."""


@predictions.command("list")
@click.option("--model", default=None)
@click.option("--version", type=click.IntRange(min=1), default=None)
@click.option("--variant", type=click.Choice(["control", "treatment", "shadow", "none"]))
@click.option("--since", default=None, help="ISO 8601 time (inclusive).")
@click.option("--until", default=None, help="ISO 8601 time (exclusive).")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=100, show_default=True)
@click.option("--cursor", type=click.IntRange(min=0), default=None)
@URL
@TOKEN
def list_command(url: str | None, token: str | None, **params: Any) -> None:
    """Print one page of logged rows as JSON (follow next_cursor with --cursor)."""
    _run(url, token, "GET", "/v1/predictions", params=params)


@predictions.command("feedback")
@click.argument("file", type=click.File("rb"))
@URL
@TOKEN
def feedback(file: IO[bytes], url: str | None, token: str | None) -> None:
    """Record outcomes from FILE ('-' = stdin): one outcome or {"outcomes": [...]}."""
    outcomes = decode_feedback(file.read())
    body = {"outcomes": [msgspec.to_builtins(outcome) for outcome in outcomes]}
    _run(url, token, "POST", "/v1/feedback", body=body)


@predictions.command("unpack")
@URL
@TOKEN
def unpack(url: str | None, token: str | None) -> None:
    """Unpack the blocks the servers shipped into records now (admin token); prints what was
    unpacked and what still waits (reads and the control plane's task unpack anyway)."""
    _run(url, token, "POST", "/v1/predictions/unpack")


__all__ = ["predictions"]
