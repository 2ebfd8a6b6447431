"""``edgestore backup``: write a copy of the database into the backup_dir setting."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Settings
from ..errors import EdgestoreError
from .options import config_option, db_option

__all__ = ["backup"]


@click.command()
@db_option()
@click.option(
    "--dir",
    "backup_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (default: the backup_dir setting).",
)
@click.option("--name", default=None, help="File name of the copy (default: <db>-<UTC time>.db).")
@config_option()
def backup(
    db_path: Path | None, backup_dir: Path | None, name: str | None, config_file: Path | None
) -> None:
    """Write a consistent copy of the database (VACUUM INTO) into the backup directory.

    Safe beside a running server: it only reads the file and never checkpoints it."""
    from ..storage.backup import backup_file

    try:
        settings = Settings.load(config_file=config_file, db_path=db_path, backup_dir=backup_dir)
        path = backup_file(settings.db_path, settings.backup_dir, name)
    except EdgestoreError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc.detail}") from exc
    click.echo(str(path))
