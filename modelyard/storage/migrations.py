"""Versioned schema migrations (Alembic), run at start-up and by ``modelyard db upgrade``.

Each package that owns tables ships an Alembic *branch* of its own (a folder of revision
scripts with a ``branch_labels`` base) and names that folder's package in the
``modelyard.migrations`` entry-point group. Upgrading goes to ``heads``: every branch to its
newest revision. Packages therefore add tables without touching each other's history, and the
vocabulary package never imports a plane.

Our revisions are recorded in a version table of our own, ``modelyard_alembic_version``, not
Alembic's default ``alembic_version``: MLflow also migrates with Alembic and its default table,
so a database shared by both would otherwise see the other's revisions and refuse to upgrade.
A database written before this rule has our revisions in ``alembic_version``; the first
upgrade moves them over (:func:`_adopt_legacy_versions`).

Replicas starting at once against one database migrate one at a time: the whole upgrade runs
in one transaction that first takes a lock the database holds, not the process: on PostgreSQL
a transaction-level advisory lock keyed by the schema, on SQLite the write lock
(``BEGIN IMMEDIATE``). The next replica waits, then finds the schema at its heads and does
nothing. Without it, the replicas' ``CREATE TABLE`` statements collide on an empty database
and every replica but one fails to start.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelyard.errors import ConfigurationError
from modelyard.storage.database import Database

MIGRATIONS_GROUP = "modelyard.migrations"
VERSION_TABLE = "modelyard_alembic_version"
_LEGACY_VERSION_TABLE = "alembic_version"
_SCRIPT_LOCATION = Path(__file__).parent / "alembic"
# Two-key advisory lock: modelyard's migrations ("my"), then the schema being migrated (so test
# schemas migrate in parallel while replicas of one schema queue).
_MIGRATION_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(28025, hashtext(coalesce(current_schema(), '')))"
)


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
    config.attributes["version_table"] = VERSION_TABLE
    return config


def _upgrade(sync_connection: Any, locations: list[Path], target: str) -> None:
    config = _alembic_config(locations)
    config.attributes["connection"] = sync_connection
    _adopt_legacy_versions(sync_connection, ScriptDirectory.from_config(config))
    command.upgrade(config, target)


def _adopt_legacy_versions(sync_connection: Any, scripts: ScriptDirectory) -> None:
    """Move our revisions out of Alembic's default table (databases from before the rule).

    Only rows naming one of our revisions move; another tool's rows (MLflow's) stay.
    """
    tables = set(sa.inspect(sync_connection).get_table_names())
    if VERSION_TABLE in tables or _LEGACY_VERSION_TABLE not in tables:
        return
    legacy = sa.table(_LEGACY_VERSION_TABLE, sa.column("version_num", sa.String))
    ours = {revision.revision for revision in scripts.walk_revisions()}
    found = [row[0] for row in sync_connection.execute(sa.select(legacy.c.version_num))]
    adopted = [revision for revision in found if revision in ours]
    if not adopted:
        return
    # The shape Alembic gives its version table.
    target = sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    target.create(sync_connection)
    sync_connection.execute(sa.insert(target), [{"version_num": r} for r in adopted])
    sync_connection.execute(sa.delete(legacy).where(legacy.c.version_num.in_(adopted)))
    if len(adopted) == len(found):
        sync_connection.execute(sa.text(f"DROP TABLE {_LEGACY_VERSION_TABLE}"))


def _current_heads(sync_connection: Any) -> set[str]:
    context = MigrationContext.configure(sync_connection, opts={"version_table": VERSION_TABLE})
    return set(context.get_current_heads())


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
    async with database.write() as conn:
        if not database.is_sqlite:  # SQLite: write() holds the database's write lock already
            await conn.execute(_MIGRATION_LOCK)
        await conn.run_sync(_upgrade, folders, target)
    async with database.engine.connect() as conn:
        return sorted(await conn.run_sync(_current_heads))


def known_heads(locations: list[Path] | None = None) -> list[str]:
    """The newest revision of every branch the installed packages ship."""
    folders = migration_locations() if locations is None else locations
    return sorted(ScriptDirectory.from_config(_alembic_config(folders)).get_heads())
