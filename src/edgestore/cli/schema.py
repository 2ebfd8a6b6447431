"""``edgestore schema``: apply the numbered schema files to a database."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Settings
from ..errors import EdgestoreError
from .options import config_option, db_option

__all__ = ["schema"]


@click.group()
def schema() -> None:
    """Manage the schema files (schemas/NNNN_name.sql, each applied once, in order)."""


@schema.command("apply")
@db_option()
@click.option(
    "--dir",
    "schemas_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of NNNN_name.sql files (default: the schemas_dir setting, ./schemas).",
)
@config_option()
def apply(db_path: Path | None, schemas_dir: Path | None, config_file: Path | None) -> None:
    """Apply the schema files not applied yet and print their names."""
    from ..opening import connect

    try:
        settings = Settings.load(config_file=config_file, db_path=db_path)
        directory = schemas_dir or settings.schemas_dir
        if directory is None or not directory.is_dir():
            raise click.ClickException(f"schema directory {str(directory)!r} does not exist")
        # Opened without schemas so that the names applied are the ones reported here.
        with connect(settings=settings, schemas_dir=None) as db:
            applied = db.apply_schemas(directory)
    except EdgestoreError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc.detail}") from exc
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo(f"nothing to apply: {settings.db_path} is up to date with {directory}")
