"""Commands that need only the vocabulary: ``config`` and ``db``.

Every command reads the settings once through :func:`modelyard.settings.load_settings`; a bad
setting stops it with one line naming the key and the value.
"""

from __future__ import annotations

import asyncio
import json

import click

from modelyard.settings import Settings, load_settings, masked
from modelyard.storage import Database, upgrade
from modelyard.storage.migrations import known_heads


def settings_from_context() -> Settings:
    """The settings of this invocation (loaded once, on first use)."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = load_settings()
    return root.obj


@click.group("config")
def config_command() -> None:
    """Inspect the effective configuration."""


@config_command.command("show")
@click.option("--format", "output_format", type=click.Choice(["toml", "json"]), default="toml")
def config_show(output_format: str) -> None:
    """Print the effective configuration (file + MODELYARD_* variables), secrets masked."""
    data = masked(settings_from_context())
    if output_format == "json":
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f'environment = "{data.pop("environment")}"')
    for section, values in data.items():
        click.echo(f"\n[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {json.dumps(value)}")


@click.group("db")
def db_command() -> None:
    """Manage the modelyard database schema."""


@db_command.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending schema migration to the configured database."""
    settings = settings_from_context()

    async def run() -> list[str]:
        database = Database(settings.database.url, pool_size=settings.database.pool_size)
        try:
            return await upgrade(database)
        finally:
            await database.dispose()

    revisions = asyncio.run(run())
    click.echo(f"database {settings.database.url.split('@')[-1]} is at: {', '.join(revisions)}")


@db_command.command("heads")
def db_heads() -> None:
    """List the newest migration of every installed package."""
    for head in known_heads():
        click.echo(head)
