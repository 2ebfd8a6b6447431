"""``edgestore tables list`` / ``edgestore tables rows TABLE``: the table model on the command
line, as JSON lines (the same filters, ordering and cursors as ``/api/v1/tables``)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import click

from ..config import Settings
from ..errors import DatabaseError, EdgestoreError
from .options import config_option, db_option

__all__ = ["tables"]


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"not a SQLite value: {value!r}")


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_default)


def _run(settings: Settings, work: Any) -> Any:
    """Open the node as ``edgestore.open`` does (with its cache; a replica node when
    ``replica_of`` is set), await ``work(store)``, close; errors as click errors."""
    from ..opening import open as open_node

    async def main() -> Any:
        store = await open_node(settings=settings)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except EdgestoreError as exc:
        code = f" [{exc.code}]" if isinstance(exc, DatabaseError) else ""
        raise click.ClickException(f"{type(exc).__name__}: {exc.detail}{code}") from exc


@click.group()
def tables() -> None:
    """Tables as resources: list them, page through rows."""


@tables.command("list")
@db_option()
@config_option()
def list_tables(db_path: Path | None, config_file: Path | None) -> None:
    """Print one JSON line per table: columns, primary key, orderable columns."""
    from ..tables import Catalog

    async def work(store: Any) -> list[str]:
        infos = (await Catalog.of(store).tables(store)).values()
        return [
            _line(
                {
                    "name": t.name,
                    "columns": [{"name": c.name, "type": c.type} for c in t.columns.values()],
                    "primary_key": list(t.pk),
                    "orderable": sorted(t.indexed),
                }
            )
            for t in infos
        ]

    for line in _run(Settings.load(config_file=config_file, db_path=db_path), work):
        click.echo(line)


@tables.command("rows")
@click.argument("table")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="COL[__OP]=VALUE",
    help="A filter, as in the HTTP API: col=v, col__gte=v, col__in=a,b, col__isnull=true.",
)
@click.option("--order", help="An indexed column to order by; prefix '-' for descending.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--after", help="The cursor printed after the previous page.")
@db_option()
@config_option()
def rows(
    table: str,
    where: tuple[str, ...],
    order: str | None,
    limit: int,
    after: str | None,
    db_path: Path | None,
    config_file: Path | None,
) -> None:
    """Print a page of TABLE's rows as JSON lines; the cursor of the next page, if any, goes
    to stderr as ``next: CURSOR``."""
    from ..tables import Table, filter_from_text, parse_order

    for term in where:
        if "=" not in term:
            raise click.BadParameter(f"{term!r}: expected COL[__OP]=VALUE", param_hint="--where")

    async def work(store: Any) -> Any:
        t = Table(store, table)
        info = await t.info()
        filters = [filter_from_text(info, *term.split("=", 1)) for term in where]
        order_by, descending = parse_order(order) if order else (None, False)
        return await t.page(
            where=filters, order_by=order_by, descending=descending, limit=limit, after=after
        )

    page = _run(Settings.load(config_file=config_file, db_path=db_path), work)
    for row in page.rows:
        click.echo(_line(row))
    if page.next is not None:
        click.echo(f"next: {page.next}", err=True)
