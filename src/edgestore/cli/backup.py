"""``edgestore backup``: write a copy of the database into the backup_dir setting."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ..config import Settings
from ..errors import EdgestoreError, InvalidRequest
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
    """Write a consistent copy of the database (VACUUM INTO) into the backup directory."""
    from ..storage import open as open_store
    from ..storage.backup import backup as take_backup

    async def run() -> Path:
        settings = Settings.load(config_file=config_file, db_path=db_path, backup_dir=backup_dir)
        if not settings.db_path.is_file():
            raise InvalidRequest(f"no database at {str(settings.db_path)!r}")
        store = await open_store(settings=settings, schemas_dir=None)
        try:
            return await take_backup(store, name)
        finally:
            await store.close()

    try:
        path = asyncio.run(run())
    except EdgestoreError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc.detail}") from exc
    click.echo(str(path))
