"""``modelyard features create|get|list|history``: the feature store from the command line.

Each command works against a running control plane (``--url http://host:port``) or, without
``--url``, directly against the local store named by the settings (``database.url``, e.g.
``MODELYARD_DATABASE_URL``), migrating it first. Both paths go through the same
:class:`~control_plane.features.client.FeatureApi`, so they accept and print the same things.
``create``, ``get`` and ``history`` print JSON; ``list`` prints a table (``--json`` for JSON).
Domain errors (unknown feature, incomplete definition, ...) end with one line on stderr and
exit status 2 (the root group does this).
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from typing import IO, Any, TypeVar

import click
import msgspec

from control_plane.features.client import FeatureApi, FeatureClient
from control_plane.features.models import FeatureDefinition, FeaturePage, definition_from_mapping
from control_plane.features.service import MAX_PAGE, FeatureService
from control_plane.features.store import SqlFeatureStore
from modelyard.commands import settings_from_context
from modelyard.enums import FeatureDType
from modelyard.errors import InvalidArgument
from modelyard.settings import Settings
from modelyard.storage import Database, upgrade
from modelyard.storage.audit import AuditLog

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()

url_option = click.option(
    "--url",
    default=None,
    metavar="URL",
    help="Control-plane base URL; without it, the local store from the settings.",
)


def run_with_api(url: str | None, action: Callable[[FeatureApi], Awaitable[T]]) -> T:
    """Run ``action`` against the control plane at ``url``, or the local store."""
    return asyncio.run(_with_api(url, settings_from_context(), action))


async def _with_api(
    url: str | None, settings: Settings, action: Callable[[FeatureApi], Awaitable[T]]
) -> T:
    if url:
        async with FeatureClient(url, token=settings.control_plane.token) as client:
            return await action(client)
    database = Database(settings.database.url, pool_size=settings.database.pool_size)
    try:
        await upgrade(database)
        return await action(FeatureService(database, SqlFeatureStore(), AuditLog(database)))
    finally:
        await database.dispose()


def _echo_json(value: object) -> None:
    click.echo(msgspec.json.format(_ENCODER.encode(value), indent=2).decode())


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "cli"


@click.group("features")
def features() -> None:
    """Versioned feature definitions (the feature store)."""


@features.command("create")
@url_option
@click.option(
    "--file", "definition_file", type=click.File("rb"), help="JSON definition ('-' = stdin)."
)
@click.option("--name", help="Unique feature name (letters, digits, _ . -).")
@click.option("--description", help="What the feature means.")
@click.option("--dtype", type=click.Choice([d.value for d in FeatureDType]), help="Value type.")
@click.option("--entity", help="The entity it describes (customer, ...).")
@click.option("--owner", help="Who answers for the definition.")
@click.option("--transformation", help="Expression or code reference that computes it.")
@click.option("--source", help="Dataset or table it is computed from.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--created-by", default=None, help="Local store: the author (default: you).")
def create(
    url: str | None,
    definition_file: IO[bytes] | None,
    tags: tuple[str, ...],
    created_by: str | None,
    **fields: str | None,
) -> None:
    """Create a feature (version 1) from options and/or a JSON file; options win."""
    raw: Any = {}
    if definition_file is not None:
        try:
            raw = msgspec.json.decode(definition_file.read())
        except msgspec.DecodeError as error:
            raise InvalidArgument(f"{definition_file.name} is not valid JSON: {error}") from None
        if not isinstance(raw, dict):
            raise InvalidArgument(f"{definition_file.name} must hold a JSON object")
    raw |= {key: value for key, value in fields.items() if value is not None}
    if tags:
        raw["tags"] = list(tags)
    definition = definition_from_mapping(raw, FeatureDefinition)
    actor = created_by or _local_user()
    _echo_json(run_with_api(url, lambda api: api.create_feature(definition, actor=actor)))


@features.command("get")
@url_option
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Exact version.")
def get(url: str | None, name: str, version: int | None) -> None:
    """Print the latest version of NAME (or exactly --version) as JSON."""
    _echo_json(run_with_api(url, lambda api: api.get_feature(name, version)))


@features.command("history")
@url_option
@click.argument("name")
def history(url: str | None, name: str) -> None:
    """Print every version of NAME, oldest first, as JSON."""
    _echo_json(run_with_api(url, lambda api: api.get_history(name)))


@features.command("list")
@url_option
@click.option("--entity", default=None, help="Only features of this entity.")
@click.option("--tag", default=None, help="Only features with this tag.")
@click.option("--owner", default=None, help="Only features of this owner.")
@click.option("--prefix", default=None, help="Only names starting with this.")
@click.option("--include-deprecated", is_flag=True, help="List deprecated features too.")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=100, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
def list_command(url: str | None, as_json: bool, **filters: Any) -> None:
    """List the latest version of each feature, by name (deprecated hidden by default)."""
    page = run_with_api(url, lambda api: api.list_features(**filters))
    if as_json:
        _echo_json(page)
        return
    _echo_table(page)


def _echo_table(page: FeaturePage) -> None:
    rows = [("NAME", "VERSION", "DTYPE", "ENTITY", "OWNER", "TAGS")]
    for f in page.items:
        name = f"{f.name} (deprecated)" if f.deprecated else f.name
        rows.append((name, str(f.version), f.dtype.value, f.entity, f.owner, ",".join(f.tags)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "0"
    click.echo(f"{shown} of {page.total} features")


__all__ = ["features"]
