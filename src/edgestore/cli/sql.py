"""``edgestore sql "<statement>"``: run one SQL statement and print the result."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import click

from ..config import Settings
from ..errors import DatabaseError, EdgestoreError, SchemaError
from .options import config_option, create_dirs_option, db_option
from .preflight import check_database_dir

__all__ = ["render_json", "render_table", "sql"]


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    return value


def render_json(result: Any) -> str:
    """The result as one JSON object (blobs as ``{"base64": ...}``)."""
    return json.dumps(
        {
            "columns": [c.name for c in result.columns],
            "rows": [[_json_value(v) for v in row] for row in result.values],
            "rows_affected": result.rows_affected,
            "last_insert_rowid": result.last_insert_rowid,
        },
        ensure_ascii=False,
    )


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "x'" + value.hex() + "'"
    return str(value)


def render_table(result: Any) -> str:
    """The result as an aligned text table, or a one-line summary for statements without rows."""
    if not result.columns:
        line = f"rows affected: {result.rows_affected}"
        if result.last_insert_rowid is not None:
            line += f", last insert rowid: {result.last_insert_rowid}"
        return line
    header = [c.name for c in result.columns]
    body = [[_text(v) for v in row] for row in result.values]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body]
    count = len(body)
    lines.append(f"({count} row{'' if count == 1 else 's'})")
    return "\n".join(lines)


@click.command()
@click.argument("statement")
@db_option()
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@config_option()
@create_dirs_option()
def sql(
    statement: str,
    db_path: Path | None,
    as_json: bool,
    config_file: Path | None,
    create_dirs: bool | None,
) -> None:
    """Run one SQL STATEMENT (reads on a reader, writes committed) and print the result."""
    from ..opening import connect

    try:
        settings = Settings.load(config_file=config_file, db_path=db_path, create_dirs=create_dirs)
        check_database_dir(settings)
        try:
            db = connect(settings=settings)
        except SchemaError as exc:
            # A broken schema file must not lock the operator out of the database they are
            # trying to inspect: open it as it is, and say what was skipped.
            click.echo(f"warning: schemas not applied: {exc.detail}", err=True)
            db = connect(settings=settings.replace(schemas_dir=None))
        with db:
            result = db.execute(statement)
    except EdgestoreError as exc:
        code = f" [{exc.code}]" if isinstance(exc, DatabaseError) else ""
        raise click.ClickException(f"{type(exc).__name__}: {exc.detail}{code}") from exc
    click.echo(render_json(result) if as_json else render_table(result))
