"""Click options shared by the commands that load Settings (``--db``, ``--config``,
``--create-dirs``).

One definition each, so the flag name, parameter name and path checks cannot drift apart
between the commands (``schema apply``, ``sql``, ``serve``, ``tables``, ``replication``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["config_option", "create_dirs_option", "db_option"]

F = TypeVar("F", bound=Callable[..., Any])

_DB_HELP = "SQLite database file (default: the db_path setting, ./edgestore.db)."


def db_option(help: str = _DB_HELP) -> Callable[[F], F]:
    """``--db`` (parameter ``db_path``): the SQLite file, overriding the db_path setting."""
    return click.option(
        "--db", "db_path", type=click.Path(dir_okay=False, path_type=Path), help=help
    )


def config_option() -> Callable[[F], F]:
    """``--config`` (parameter ``config_file``): a TOML file of Settings fields."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML config file (keys are Settings field names).",
    )


def create_dirs_option() -> Callable[[F], F]:
    """``--create-dirs`` (parameter ``create_dirs``; unset: the create_dirs setting)."""
    return click.option(
        "--create-dirs",
        is_flag=True,
        default=None,
        help="Create missing parent directories of --db (otherwise a missing one is an error).",
    )
