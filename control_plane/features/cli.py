"""``modelyard features create|get|list|history``: the feature store from the command line.

Every command speaks the feature store's REST API (:mod:`control_plane.cli_client`): to a
running control plane (``--url http://host:port``) or, without ``--url``, in-process over the
local store named by the settings (``database.url``), through the same guards and audit log.
``create`` needs an API token (``--token`` or ``control_plane.token``); the server records its
principal as the author. ``create``, ``get`` and ``history`` print JSON; ``list`` prints a table
(``--json`` for JSON). Errors (unknown feature, incomplete definition, ...) end with one line on
stderr and exit status 2 (the root group does this).
"""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import quote

import click
import msgspec

from control_plane.cli_client import TOKEN_OPTION, URL_OPTION, echo_json, request
from control_plane.features.models import FeatureDefinition, FeaturePage, definition_from_mapping
from control_plane.features.service import MAX_PAGE
from modelyard.enums import FeatureDType
from modelyard.errors import InvalidArgument


@click.group("features")
def features() -> None:
    """Versioned feature definitions (the feature store)."""


@features.command("create")
@URL_OPTION
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
@TOKEN_OPTION
def create(
    url: str | None,
    token: str | None,
    definition_file: IO[bytes] | None,
    tags: tuple[str, ...],
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
    echo_json(request(url, token, "POST", "/v1/features", body=msgspec.to_builtins(definition)))


@features.command("get")
@URL_OPTION
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), default=None, help="Exact version.")
def get(url: str | None, name: str, version: int | None) -> None:
    """Print the latest version of NAME (or exactly --version) as JSON."""
    path = f"/v1/features/{quote(name, safe='')}"
    echo_json(request(url, None, "GET", path, params={"version": version}))


@features.command("history")
@URL_OPTION
@click.argument("name")
def history(url: str | None, name: str) -> None:
    """Print every version of NAME, oldest first, as JSON."""
    echo_json(request(url, None, "GET", f"/v1/features/{quote(name, safe='')}/versions"))


@features.command("list")
@URL_OPTION
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
    answer = request(url, None, "GET", "/v1/features", params=filters)
    if as_json:
        echo_json(answer)
        return
    _echo_table(msgspec.convert(answer, FeaturePage))


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
