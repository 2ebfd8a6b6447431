"""The root click group.

Subcommands live in their own modules and are imported only when invoked, so that
``edgestore version`` does not pay for importing the web stack or psycopg.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from .._version import __version__

# name -> "module:attribute" of a click.Command, relative to edgestore.cli
COMMANDS: dict[str, str] = {
    "version": "main:version",
    "schema": "schema:schema",
    "sql": "sql:sql",
    "tables": "tables:tables",
    "serve": "serve:serve",
    "token": "token:token",
    "migrate": "migrate:migrate",
    "replication": "replication:replication",
    "backup": "backup:backup",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if _exists(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _exists(cmd_name):
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(f"{__package__}.{module_name}")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


def _exists(name: str) -> bool:
    module_name = COMMANDS[name].split(":")[0]
    return importlib.util.find_spec(f"{__package__}.{module_name}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgestore")
def main() -> None:
    """edgestore: SQLite in WAL mode over HTTP and the libSQL protocol, with a compressed
    cache, libSQL replicas and a lossless Postgres migration."""


@click.command()
def version() -> None:
    """Print the edgestore, SQLite and Python versions."""
    import platform

    import apsw

    click.echo(f"edgestore {__version__}")
    click.echo(f"sqlite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})")
    click.echo(f"python {platform.python_version()}")
