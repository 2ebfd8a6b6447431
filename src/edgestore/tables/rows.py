"""One-row operations by primary key, and inserts with optional upsert on the key.

Statements are generated from the catalogue (names quoted from it, values bound) and the
per-table ones memoised on ``TableInfo.sql``: the point read is the hottest read there is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import InvalidRequest
from ..storage.results import Params, Result, Value
from .catalog import TableInfo, quote_ident

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["delete_row", "insert_rows", "insert_statement", "read_row", "update_row"]


def _key_where(t: TableInfo) -> str:
    return " AND ".join(f"{quote_ident(c)} = ?" for c in t.pk)


async def read_row(store: Store, t: TableInfo, key: list[Value]) -> Result:
    """The row whose primary key is ``key`` (from ``TableInfo.key_values``): zero or one row."""
    sql = t.sql.get("get")
    if sql is None:
        sql = t.sql["get"] = f"SELECT {t.select_list()} FROM {t.quoted} WHERE {_key_where(t)}"
    return await store.query(sql, key, max_rows=1)


def _columns(t: TableInfo, row: Mapping[str, Value]) -> tuple[list[str], list[Value]]:
    cols: list[str] = []
    vals: list[Value] = []
    for name, value in row.items():
        t.column(name)
        cols.append(name)
        vals.append(value)
    return cols, vals


def insert_statement(t: TableInfo, row: Mapping[str, Value], *, upsert: bool) -> tuple[str, Params]:
    """INSERT ... RETURNING the row; with ``upsert``, a primary-key conflict updates the given
    columns instead of failing."""
    cols, vals = _columns(t, row)
    ret = f" RETURNING {t.select_list()}"
    if not cols:
        return f"INSERT INTO {t.quoted} DEFAULT VALUES{ret}", vals
    sql = (
        f"INSERT INTO {t.quoted} ({', '.join(quote_ident(c) for c in cols)}) "
        f"VALUES ({', '.join('?' * len(cols))})"
    )
    if upsert:
        if t.rowid_key:
            raise InvalidRequest(f"table {t.name!r} has no primary key to upsert on")
        updates = [c for c in cols if c not in t.pk]
        target = ", ".join(quote_ident(c) for c in t.pk)
        if updates:
            sets = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in updates)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    return sql + ret, vals


async def insert_rows(
    store: Store, t: TableInfo, rows: Sequence[Mapping[str, Value]], *, upsert: bool
) -> list[Result]:
    """Insert ``rows`` atomically (one statement each); the results hold the rows written."""
    if not rows:
        raise InvalidRequest("nothing to insert")
    stmts = [insert_statement(t, row, upsert=upsert) for row in rows]
    if len(stmts) == 1:
        return [await store.execute(*stmts[0])]
    return await store.batch(stmts)


async def update_row(
    store: Store, t: TableInfo, key: list[Value], values: Mapping[str, Value]
) -> Result:
    """Set ``values`` on the row with primary key ``key``; the result holds it (or nothing)."""
    cols, vals = _columns(t, values)
    if not cols:
        raise InvalidRequest("nothing to update: send an object of column values")
    sets = ", ".join(f"{quote_ident(c)} = ?" for c in cols)
    sql = f"UPDATE {t.quoted} SET {sets} WHERE {_key_where(t)} RETURNING {t.select_list()}"
    return await store.execute(sql, [*vals, *key])


async def delete_row(store: Store, t: TableInfo, key: list[Value]) -> bool:
    """Delete the row with primary key ``key``; False if there was none."""
    result = await store.execute(f"DELETE FROM {t.quoted} WHERE {_key_where(t)}", key)
    return bool(result.rows_affected)
