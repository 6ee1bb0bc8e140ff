"""Versioned schema migrations (Alembic), run at start-up and by ``modelyard db upgrade``.

Each package that owns tables ships an Alembic *branch* of its own (a folder of revision
scripts with a ``branch_labels`` base) and names that folder's package in the
``modelyard.migrations`` entry-point group. Upgrading goes to ``heads``: every branch to its
newest revision. Packages therefore add tables without touching each other's history, and the
vocabulary package never imports a plane.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelyard.errors import ConfigurationError
from modelyard.storage.database import Database

MIGRATIONS_GROUP = "modelyard.migrations"
_SCRIPT_LOCATION = Path(__file__).parent / "alembic"


def migration_locations() -> list[Path]:
    """The revision folders of every installed package, from the entry points.

    Raises:
        ConfigurationError: an entry point names a module that cannot be imported.
    """
    locations = []
    for entry_point in sorted(entry_points(group=MIGRATIONS_GROUP), key=lambda ep: ep.name):
        try:
            module = entry_point.load()
        except ImportError as error:
            raise ConfigurationError(
                f"migrations of {entry_point.name!r} ({entry_point.value}) cannot load: {error}"
            ) from None
        locations.append(Path(module.__file__).parent)
    return locations


def _alembic_config(locations: list[Path]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", ":".join(str(path) for path in locations))
    return config


def _upgrade(sync_connection: Any, locations: list[Path], target: str) -> None:
    config = _alembic_config(locations)
    config.attributes["connection"] = sync_connection
    command.upgrade(config, target)


def _current_heads(sync_connection: Any) -> set[str]:
    return set(MigrationContext.configure(sync_connection).get_current_heads())


async def upgrade(
    database: Database, locations: list[Path] | None = None, target: str = "heads"
) -> list[str]:
    """Bring the schema to ``target`` (default: the newest revision of every branch).

    Args:
        database: the database to migrate.
        locations: revision folders; all installed ones when omitted.
        target: an Alembic revision target.

    Returns:
        The revisions the schema is at afterwards.
    """
    folders = migration_locations() if locations is None else locations
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade, folders, target)
    async with database.engine.connect() as conn:
        return sorted(await conn.run_sync(_current_heads))


def known_heads(locations: list[Path] | None = None) -> list[str]:
    """The newest revision of every branch the installed packages ship."""
    folders = migration_locations() if locations is None else locations
    return sorted(ScriptDirectory.from_config(_alembic_config(folders)).get_heads())
