"""Keyset pages: ordering by an indexed column, then the primary key, and opaque cursors.

A page never uses OFFSET: the cursor holds the last row's order and key values, and the next
page starts strictly after them, so a page costs the same wherever it starts and rows written
meanwhile are neither skipped nor repeated.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from ..errors import InvalidRequest
from ..storage.results import Value
from .catalog import TableInfo, quote_ident
from .filters import Where, where_sql

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["RawPage", "decode_cursor", "encode_cursor", "parse_order", "read_page"]

_encode = msgspec.msgpack.encode
# Untyped: msgspec refuses a union of str and bytes; msgpack keeps them apart (str vs bin).
_decode = msgspec.msgpack.Decoder().decode
_VALUE_TYPES = (int, float, str, bytes, type(None))


def encode_cursor(values: list[Value]) -> str:
    """An opaque, URL-safe cursor holding ``values`` exactly (64-bit ints, blobs, inf)."""
    return base64.urlsafe_b64encode(_encode(values)).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, n: int) -> list[Value]:
    """The ``n`` values of a cursor from ``encode_cursor``; InvalidRequest for anything else."""
    try:
        values: object = _decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, msgspec.DecodeError):
        raise InvalidRequest("cursor: not a cursor returned by this API") from None
    if not isinstance(values, list) or not all(isinstance(v, _VALUE_TYPES) for v in values):
        raise InvalidRequest("cursor: not a cursor returned by this API")
    if len(values) != n:
        raise InvalidRequest("cursor: does not match this table and order")
    return values


def parse_order(text: str) -> tuple[str, bool]:
    """``"col"`` / ``"-col"`` as (column, descending)."""
    return (text[1:], True) if text.startswith("-") else (text, False)


@dataclass(slots=True)
class RawPage:
    """A page as the store returned it: column names, row tuples, the next page's cursor."""

    names: list[str]
    values: list[tuple[Value, ...]]
    next: str | None
    """Cursor of the next page; ``None`` on the last page."""


def _tuple(cols: list[str]) -> str:
    quoted = [quote_ident(c) for c in cols]
    return quoted[0] if len(quoted) == 1 else "(" + ", ".join(quoted) + ")"


def _params_tuple(n: int) -> str:
    return "?" if n == 1 else "(" + ", ".join("?" * n) + ")"


def _keyset(
    t: TableInfo, order_col: str | None, desc: bool, cursor_vals: list[Value]
) -> tuple[str, list[Value]]:
    """The WHERE term that starts after the cursor row (NULLs first ascending, last descending,
    as SQLite sorts them)."""
    pk = list(t.pk)
    gt = "<" if desc else ">"
    if order_col is None:
        return f"{_tuple(pk)} {gt} {_params_tuple(len(pk))}", list(cursor_vals)
    c = quote_ident(order_col)
    v, pkv = cursor_vals[0], cursor_vals[1:]
    pk_after = f"{_tuple(pk)} {gt} {_params_tuple(len(pk))}"
    if v is None:
        if desc:
            return f"({c} IS NULL AND {pk_after})", list(pkv)
        return f"(({c} IS NULL AND {pk_after}) OR {c} IS NOT NULL)", list(pkv)
    term = f"({c} {gt} ? OR ({c} = ? AND {pk_after})" + (f" OR {c} IS NULL)" if desc else ")")
    return term, [v, v, *pkv]


def _order_column(t: TableInfo, order_by: str | None) -> str | None:
    """The column to order by before the key, or None to order by the key alone."""
    if order_by is None:
        return None
    t.column(order_by)
    if order_by not in t.indexed:
        raise InvalidRequest(
            f"cannot order {t.name!r} by {order_by!r}: not an indexed column "
            f"(orderable: {', '.join(sorted(t.indexed))})"
        )
    # Ordering by the key's first column is ordering by the key itself.
    return None if order_by == t.pk[0] else order_by


async def read_page(
    store: Store,
    t: TableInfo,
    *,
    where: Where = (),
    order_by: str | None = None,
    descending: bool = False,
    limit: int,
    after: str | None = None,
) -> RawPage:
    """Up to ``limit`` rows matching ``where``, ordered by ``order_by`` (an indexed column)
    then the primary key, starting after the cursor ``after``."""
    if limit < 1:
        raise InvalidRequest("limit: must be at least 1")
    order_col = _order_column(t, order_by)
    terms, params = where_sql(t, where)
    key_cols = ([order_col] if order_col else []) + list(t.pk)
    if after:
        term, cparams = _keyset(t, order_col, descending, decode_cursor(after, len(key_cols)))
        terms.append(term)
        params.extend(cparams)
    direction = " DESC" if descending else ""
    order_sql = ", ".join(quote_ident(c) + direction for c in key_cols)
    sql = f"SELECT {t.select_list()} FROM {t.quoted}"
    if terms:
        sql += " WHERE " + " AND ".join(terms)
    sql += f" ORDER BY {order_sql} LIMIT ?"
    params.append(limit + 1)
    result = await store.query(sql, params, max_rows=limit + 1)
    names = [c.name for c in result.columns]
    values = result.values
    next_cursor = None
    if len(values) > limit:
        values = values[:limit]
        last = dict(zip(names, values[-1], strict=False))
        next_cursor = encode_cursor([last[c] for c in key_cols])
    return RawPage(names, values, next_cursor)
