"""``modelyard tokens create|list|revoke|whoami``: manage API tokens (admin)."""

from __future__ import annotations

import click

from control_plane.cli_client import TOKEN_OPTION, URL_OPTION, echo_json, request
from modelyard.enums import Role

URL = URL_OPTION
TOKEN = TOKEN_OPTION


def _run(url: str | None, token: str | None, method: str, path: str, body: object = None) -> None:
    echo_json(request(url, token, method, path, body=body))


@click.group("tokens")
def tokens() -> None:
    """Manage control-plane API tokens (stored hashed; admin role needed)."""


@tokens.command("create")
@click.argument("principal")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--description", default="")
@URL
@TOKEN
def create(principal: str, role: str, description: str, url: str | None, token: str | None) -> None:
    """Issue a token for PRINCIPAL; the secret is printed once and never stored."""
    body = {"principal": principal, "role": role, "description": description}
    _run(url, token, "POST", "/v1/tokens", body)


@tokens.command("list")
@URL
@TOKEN
def list_tokens(url: str | None, token: str | None) -> None:
    """List tokens (never their secrets)."""
    _run(url, token, "GET", "/v1/tokens")


@tokens.command("revoke")
@click.argument("token_id")
@URL
@TOKEN
def revoke(token_id: str, url: str | None, token: str | None) -> None:
    """Revoke a token by id."""
    _run(url, token, "DELETE", f"/v1/tokens/{token_id}")


@tokens.command("whoami")
@URL
@TOKEN
def whoami(url: str | None, token: str | None) -> None:
    """Show the principal and role of the token."""
    _run(url, token, "GET", "/v1/tokens/me")
