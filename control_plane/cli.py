"""``modelyard control-plane``: run the control-plane REST service."""

from __future__ import annotations

import click
import msgspec
import uvloop

from control_plane.server import ControlPlaneServer
from modelyard.commands import settings_from_context


@click.command("control-plane")
@click.option("--host", default=None, help="Interface to bind (default: settings).")
@click.option("--port", type=int, default=None, help="Port (default: settings; 0 = any free).")
def control_plane(host: str | None, port: int | None) -> None:
    """Run the control-plane REST service (OpenAPI at /schema)."""
    settings = settings_from_context()
    if host is not None:
        settings = msgspec.structs.replace(
            settings,
            control_plane=msgspec.structs.replace(settings.control_plane, host=host),
        )
    server = ControlPlaneServer(settings, port=port)

    async def run() -> None:
        await server.start()
        token_path = server.services.admin_token_path if server.services else None
        if token_path is not None:
            click.echo(f"first start: admin API token written to {token_path}")
        click.echo(f"control plane listening on {server.url} (OpenAPI: {server.url}/schema)")
        await server.serve_forever_started()

    uvloop.run(run())


__all__ = ["control_plane"]
