"""``Table``: a table of a store as a library object, the way the HTTP routes present it.

page = await Table(store, "items").page(where={"kind": "pen"}, order_by="price", limit=50)
more = await Table(store, "items").page(where={"kind": "pen"}, order_by="price", limit=50,
                                        after=page.next)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from .catalog import Catalog, TableInfo
from .filters import Where
from .paging import read_page
from .rows import delete_row, insert_rows, read_row, update_row

if TYPE_CHECKING:
    from ..storage import Store
    from ..storage.results import Result, Value

__all__ = ["Page", "Table", "table_names"]


@dataclass(frozen=True, slots=True)
class Page:
    """Rows of one page, as dicts, and the cursor of the next page (``None`` on the last)."""

    rows: list[dict[str, Value]]
    next: str | None


def _dicts(result: Result) -> list[dict[str, Value]]:
    names = [c.name for c in result.columns]
    return [dict(zip(names, row, strict=True)) for row in result.values]


async def table_names(store: Store) -> list[str]:
    """The user tables of ``store``, sorted."""
    return list(await Catalog.of(store).tables(store))


class Table:
    """One table of ``store``: keyset pages, point reads, inserts/upserts, updates, deletes.

    Keys are the primary key's value, or a sequence of values for a composite key (the
    implicit ``rowid`` for a table without one). Names are checked against the catalogue
    (``Catalog.of(store)``, shared by every Table of the store and refreshed on schema change).
    """

    __slots__ = ("_catalog", "name", "store")

    def __init__(self, store: Store, name: str, *, catalog: Catalog | None = None) -> None:
        self.store = store
        self.name = name
        self._catalog = catalog if catalog is not None else Catalog.of(store)

    async def info(self) -> TableInfo:
        """Columns, primary key, indexes and orderable columns; NotFoundError if no table."""
        return await self._catalog.table(self.store, self.name)

    async def _key(self, key: Value | Sequence[Value]) -> tuple[TableInfo, list[Value]]:
        t = await self.info()
        parts: list[Value] = list(key) if isinstance(key, (list, tuple)) else [cast("Value", key)]
        return t, t.key_values(parts)

    async def page(
        self,
        *,
        where: Where = (),
        order_by: str | None = None,
        descending: bool = False,
        limit: int = 100,
        after: str | None = None,
    ) -> Page:
        """Up to ``limit`` rows matching ``where`` (a column -> value mapping or ``Filter``s),
        ordered by ``order_by`` (an indexed column; default the primary key) then the key,
        starting after the cursor ``after`` (a previous page's ``next``)."""
        t = await self.info()
        raw = await read_page(
            self.store,
            t,
            where=where,
            order_by=order_by,
            descending=descending,
            limit=limit,
            after=after,
        )
        rows = [dict(zip(raw.names, row, strict=True)) for row in raw.values]
        return Page(rows=rows, next=raw.next)

    async def get(self, key: Value | Sequence[Value]) -> dict[str, Value] | None:
        """The row with primary key ``key``, or None."""
        t, values = await self._key(key)
        rows = _dicts(await read_row(self.store, t, values))
        return rows[0] if rows else None

    async def insert(
        self, rows: Mapping[str, Value] | Sequence[Mapping[str, Value]], *, upsert: bool = False
    ) -> list[dict[str, Value]]:
        """Insert one row or several (atomically); with ``upsert``, a primary-key conflict
        updates the given columns. Returns the rows as written."""
        items = [rows] if isinstance(rows, Mapping) else list(rows)
        results = await insert_rows(self.store, await self.info(), items, upsert=upsert)
        return [row for result in results for row in _dicts(result)]

    async def update(
        self, key: Value | Sequence[Value], values: Mapping[str, Value]
    ) -> dict[str, Value] | None:
        """Set ``values`` on the row with primary key ``key``; the row after, or None."""
        t, k = await self._key(key)
        rows = _dicts(await update_row(self.store, t, k, values))
        return rows[0] if rows else None

    async def delete(self, key: Value | Sequence[Value]) -> bool:
        """Delete the row with primary key ``key``; False if there was none."""
        t, k = await self._key(key)
        return await delete_row(self.store, t, k)
