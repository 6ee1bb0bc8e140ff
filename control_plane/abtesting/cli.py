"""``modelyard ab-tests``: A/B tests against a running control plane (``--url``).

Each command sends one request to ``/v1/ab-tests`` (to ``--url``, or in-process over the
local store) and prints the JSON answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from control_plane.cli_client import TOKEN_OPTION, URL_OPTION, echo_json, request

URL = URL_OPTION
TOKEN = TOKEN_OPTION


def _run(
    url: str | None,
    token: str | None,
    method: str,
    path: str,
    body: object = None,
    params: dict[str, Any] | None = None,
) -> None:
    """One REST call through the shared client (``--url`` or the in-process app)."""
    echo_json(request(url, token, method, path, body=body, params=params))


@click.group("ab-tests")
def ab_tests() -> None:
    """A/B tests between model versions (create, report, split, conclude, promote)."""


@ab_tests.command("create")
@click.argument("definition", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@URL
@TOKEN
def create(definition: Path, url: str | None, token: str | None) -> None:
    """Create a test from a JSON DEFINITION file (see docs/ab-testing.md)."""
    _run(url, token, "POST", "/v1/ab-tests", json.loads(definition.read_text()))


@ab_tests.command("list")
@click.option("--model", default=None)
@URL
@TOKEN
def list_tests(model: str | None, url: str | None, token: str | None) -> None:
    """List tests, newest first."""
    _run(url, token, "GET", "/v1/ab-tests", params={"model": model})


@ab_tests.command("report")
@click.argument("test_id")
@URL
@TOKEN
def report(test_id: str, url: str | None, token: str | None) -> None:
    """Per-variant metrics and the recommendation of a test."""
    _run(url, token, "GET", f"/v1/ab-tests/{test_id}/report")


@ab_tests.command("assign")
@click.argument("test_id")
@click.argument("key")
@URL
@TOKEN
def assign(test_id: str, key: str, url: str | None, token: str | None) -> None:
    """Which variant a routing KEY gets."""
    _run(url, token, "GET", f"/v1/ab-tests/{test_id}/assignment", params={"key": key})


@ab_tests.command("split")
@click.argument("test_id")
@click.argument("weights", nargs=-1, required=True)
@click.option("--reason", default="")
@URL
@TOKEN
def split(
    test_id: str, weights: tuple[str, ...], reason: str, url: str | None, token: str | None
) -> None:
    """New WEIGHTS as VERSION=WEIGHT pairs, e.g. ``3=0.5 4=0.5``."""
    try:
        parsed = {v: float(w) for v, w in (pair.split("=", 1) for pair in weights)}
    except ValueError:
        raise click.BadParameter("weights are VERSION=WEIGHT pairs") from None
    body = {"weights": parsed, "reason": reason}
    _run(url, token, "PUT", f"/v1/ab-tests/{test_id}/split", body)


@ab_tests.command("conclude")
@click.argument("test_id")
@click.argument("version", type=int)
@click.option("--reason", default="")
@URL
@TOKEN
def conclude(test_id: str, version: int, reason: str, url: str | None, token: str | None) -> None:
    """End a test; VERSION gets all traffic."""
    body = {"version": version, "reason": reason}
    _run(url, token, "POST", f"/v1/ab-tests/{test_id}/conclude", body)


@ab_tests.command("stop")
@click.argument("test_id")
@URL
@TOKEN
def stop(test_id: str, url: str | None, token: str | None) -> None:
    """Abandon a test; the control gets all traffic."""
    _run(url, token, "POST", f"/v1/ab-tests/{test_id}/stop")


@ab_tests.command("promote")
@click.argument("test_id")
@URL
@TOKEN
def promote(test_id: str, url: str | None, token: str | None) -> None:
    """Promote the treatment to Production (only on a "promote" recommendation)."""
    _run(url, token, "POST", f"/v1/ab-tests/{test_id}/promote")


@ab_tests.command("plan")
@click.option("--baseline", type=float, required=True)
@click.option("--mde", type=float, required=True, help="minimum detectable effect")
@click.option("--variance", type=float, default=None, help="per-unit variance (means)")
@click.option("--relative", is_flag=True)
@click.option("--daily-traffic", type=float, default=None)
@URL
@TOKEN
def plan(
    baseline: float,
    mde: float,
    variance: float | None,
    relative: bool,
    daily_traffic: float | None,
    url: str | None,
    token: str | None,
) -> None:
    """Sample size per variant and expected duration."""
    body = {
        "baseline": baseline,
        "minimum_detectable_effect": mde,
        "variance": variance,
        "relative": relative,
        "daily_traffic": daily_traffic,
    }
    _run(url, token, "POST", "/v1/ab-tests/plan", body)
