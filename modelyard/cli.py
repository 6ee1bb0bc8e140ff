"""The ``modelyard`` command line.

One console script. The vocabulary package owns the root group and the commands that need
nothing but the vocabulary (``config``, ``db``); every plane contributes its own commands through
the ``modelyard.commands`` entry-point group, so this module never imports a plane. Commands
load lazily: ``modelyard config show`` does not pay for importing MLflow.

Domain errors end the command with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from modelyard.commands import config_command, db_command
from modelyard.errors import ModelyardError

COMMANDS_GROUP = "modelyard.commands"


def _plugin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


class PluginGroup(click.Group):
    """A click group that adds the commands registered under ``modelyard.commands``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_plugin_entry_points()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry_point = _plugin_entry_points().get(cmd_name)
        if entry_point is None:
            return None
        try:
            loaded = entry_point.load()
        except ModuleNotFoundError as missing:
            return _unavailable(cmd_name, missing)
        if not isinstance(loaded, click.Command):
            raise click.ClickException(f"entry point {entry_point.value} is not a click command")
        return loaded

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except ModuleNotFoundError as missing:
            # A command whose heavy imports are deferred, run on a lean (serving) install.
            click.echo(
                f"error: needs {missing.name!r}: pip install 'modelyard[control-plane]'", err=True
            )
            sys.exit(2)


def _unavailable(name: str, missing: ModuleNotFoundError) -> click.Command:
    """A stand-in for a command whose dependencies are not installed (a lean serving
    install has no control-plane extras): listed, and explaining itself when run."""
    hint = f"needs {missing.name!r}: pip install 'modelyard[control-plane]'"

    def explain() -> None:
        raise click.ClickException(f"'modelyard {name}' {hint}")

    return click.Command(name, callback=explain, help=f"(unavailable: {hint})")


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelyard")
def main() -> None:
    """modelyard: serve compiled tabular models fast, and run the control plane that feeds them."""


main.add_command(config_command)
main.add_command(db_command)
