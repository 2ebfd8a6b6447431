"""Tables as resources: list tables, page through rows, read/insert/upsert/update/delete a row.

Names in the URL and query string are looked up in the schema (``tableinfo``), never spliced
into SQL; values are always bound parameters. Reads go through the query cache; writes through
group commit (the store invalidates exactly the tables a statement wrote).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Hashable
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from ...auth import Role
from ...cache.store_cache import StoreCache
from ...errors import InvalidRequest, NotFoundError
from ..encoding import decode_value, encode_row, encode_value
from ..errors import (
    CONFLICT,
    CREATED,
    NO_CONTENT,
    NOT_FOUND,
    NOT_MODIFIED,
    OK,
    ok_response,
    responses,
)
from ..hotcache import HOT_OPT, HotCache, HotEntry
from ..state import ROLE_OPT, AppState
from ..tableinfo import SchemaCache, TableInfo, quote_ident

__all__ = ["HOT_SCOPE_KEY", "RowsOut", "TableOut", "hot_key", "route_handlers"]

HOT_SCOPE_KEY = "edgestore_hot"

_RESERVED = frozenset({"limit", "order", "cursor"})
_OPS: dict[str, str] = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
}
_MAX_IN = 500
DEFAULT_LIMIT = 100

TableName = Annotated[str, PathParameter(description="A table name, as listed by /api/v1/tables")]
RowKey = Annotated[
    str,
    PathParameter(
        description="The primary key value. Composite keys: the parts joined by commas "
        '(1,2), or a JSON array (["a,b", 2]) when a part contains a comma. Tables '
        "without a declared primary key use the rowid."
    ),
]


class ColumnDesc(msgspec.Struct):
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int


class TableOut(msgspec.Struct):
    name: str
    columns: list[ColumnDesc]
    primary_key: list[str]
    orderable: list[str]
    """Columns rows may be ordered by (they lead an index or the primary key)."""
    without_rowid: bool


class TablesOut(msgspec.Struct):
    tables: list[TableOut]


class RowsOut(msgspec.Struct):
    rows: list[dict[str, Any]]
    next: str | None
    """Opaque cursor for the next page (pass as ?cursor=); null on the last page."""


class WrittenOut(msgspec.Struct):
    rows: list[dict[str, Any]]


def _table_out(t: TableInfo) -> TableOut:
    return TableOut(
        name=t.name,
        columns=[
            ColumnDesc(c.name, c.type, c.notnull, c.default, c.pk) for c in t.columns.values()
        ],
        primary_key=list(t.pk),
        orderable=sorted(t.indexed),
        without_rowid=t.without_rowid,
    )


def _row_dict(names: list[str], row: Any) -> dict[str, Any]:
    return dict(zip(names, encode_row(row), strict=False))


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _not_modified(scope: Any, etag: str) -> bool:
    # Raw scope headers: building Litestar's Headers object costs more than this whole scan.
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = {t.strip().removeprefix("W/") for t in value.decode("latin-1").split(",")}
            return etag in tags or "*" in tags
    return False


def hot_key(scope: Any) -> bytes:
    """The HotCache key of a request: its exact path and query string."""
    path = scope.get("raw_path") or scope["path"].encode()
    return bytes(path) + b"?" + bytes(scope["query_string"])


class RawResponse(ASGIResponse):
    """A complete response as raw ASGI messages: no header normalisation, no cookies, no
    background tasks. These are the hot read routes; Litestar's Response (and ASGIResponse's
    own __init__) cost more per request than the row lookup itself."""

    __slots__ = ("_raw_body", "_raw_headers", "_raw_status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._raw_status = status
        self._raw_headers = headers
        self._raw_body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self._raw_status,
                "headers": self._raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": self._raw_body, "more_body": False})


def _json_response(request: Request[Any, Any, Any], payload: Any) -> ASGIResponse:
    """A JSON response with an ETag; Not Modified when the client already has this body.

    An ASGIResponse, not a Response: these are the hot read routes, and skipping Litestar's
    Response-to-ASGI conversion saves ~15 µs a request. Their OpenAPI success response is
    declared by hand (``ok_response``).
    """
    body = msgspec.json.encode(payload)
    etag = _etag(body)
    etag_bytes = etag.encode("ascii")
    scope: dict[str, Any] = request.scope  # type: ignore[assignment]
    hot: tuple[HotCache, frozenset[str], Hashable] | None = scope.get(HOT_SCOPE_KEY)
    if hot is not None:
        cache, tables, stamp = hot
        cache.put(hot_key(request.scope), HotEntry(tables, stamp, body, etag_bytes))
    if _not_modified(request.scope, etag):
        return RawResponse(NOT_MODIFIED, [(b"etag", etag_bytes)], b"")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"etag", etag_bytes),
    ]
    return RawResponse(OK, headers, body)


def _parse_key(t: TableInfo, raw: str) -> list[Any]:
    """The primary key values of ``raw`` (see RowKey)."""
    if raw.startswith("["):
        try:
            parts = json.loads(raw)
        except ValueError:
            raise InvalidRequest("row key: invalid JSON array") from None
        if not isinstance(parts, list):
            raise InvalidRequest("row key: expected a JSON array")
        values = [decode_value(p, "row key") for p in parts]
    elif len(t.pk) == 1:
        values = [raw]
    else:
        values = list(raw.split(","))
    if len(values) != len(t.pk):
        raise InvalidRequest(
            f"table {t.name!r} has a {len(t.pk)}-column primary key ({', '.join(t.pk)}); "
            f"got {len(values)} value(s)"
        )
    return [
        t.coerce(col, v) if isinstance(v, str) else v for col, v in zip(t.pk, values, strict=True)
    ]


def _key_where(t: TableInfo) -> str:
    return " AND ".join(f"{quote_ident(c)} = ?" for c in t.pk)


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error):
        raise InvalidRequest("cursor: not a cursor returned by this API") from None
    if not isinstance(parts, list) or len(parts) != n:
        raise InvalidRequest("cursor: does not match this table and order")
    return [decode_value(p, "cursor") for p in parts]


def _tuple(cols: list[str]) -> str:
    quoted = [quote_ident(c) for c in cols]
    return quoted[0] if len(quoted) == 1 else "(" + ", ".join(quoted) + ")"


def _params_tuple(n: int) -> str:
    return "?" if n == 1 else "(" + ", ".join("?" * n) + ")"


def _filters(t: TableInfo, query: Any) -> tuple[list[str], list[Any]]:
    """WHERE terms from query-string filters: ``col=v``, ``col__gte=v``, ``col__in=a,b``,
    ``col__isnull=true``."""
    terms: list[str] = []
    params: list[Any] = []
    for key, value in query.multi_items():
        if key in _RESERVED:
            continue
        col, op = key, "eq"
        if key not in t.columns and "__" in key:
            col, _, op = key.rpartition("__")
        if col == "rowid" and t.rowid_key:
            pass
        else:
            t.column(col)
        q = quote_ident(col)
        if op in _OPS:
            terms.append(f"{q} {_OPS[op]} ?")
            params.append(t.coerce(col, value))
        elif op == "in":
            items = value.split(",")
            if len(items) > _MAX_IN:
                raise InvalidRequest(f"{key}: at most {_MAX_IN} values")
            terms.append(f"{q} IN ({', '.join('?' * len(items))})")
            params.extend(t.coerce(col, v) for v in items)
        elif op == "isnull":
            low = value.lower()
            if low not in ("true", "false", "1", "0"):
                raise InvalidRequest(f"{key}: expected true or false")
            terms.append(f"{q} IS {'' if low in ('true', '1') else 'NOT '}NULL")
        else:
            raise InvalidRequest(
                f"{key}: unknown filter operator {op!r} "
                "(eq, ne, gt, gte, lt, lte, like, in, isnull)"
            )
    return terms, params


def _keyset(
    t: TableInfo, order_col: str | None, desc: bool, cursor_vals: list[Any]
) -> tuple[str, list[Any]]:
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


def route_handlers(state: AppState, schema: SchemaCache) -> list[HTTPRouteHandler]:
    settings = state.settings
    ro = {ROLE_OPT: Role.RO}
    rw = {ROLE_OPT: Role.RW}
    hot_ro = {ROLE_OPT: Role.RO, HOT_OPT: True}
    # Several workers each hold a store: a write in one is seen by another only when that
    # one next reads from SQLite, which a hot hit never does. So: one worker only. Settings
    # are frozen, so this is decided once per app rather than per request.
    hot_enabled = settings.query_cache and settings.workers == 1

    async def table(name: str) -> TableInfo:
        return await schema.table(state.store, name)

    def remember(request: Request[Any, Any, Any], t: TableInfo) -> None:
        """Arrange for the response to enter the HotCache, stamped as of *before* the read."""
        if hot_enabled:
            tables = frozenset((t.name,))
            request.scope[HOT_SCOPE_KEY] = (  # type: ignore[literal-required]
                state.hot,
                tables,
                state.store.versions.stamp(tables),
            )

    @get(
        "/api/v1/tables",
        opt=ro,
        tags=["tables"],
        summary="List tables and their columns",
        responses=responses(),
    )
    async def list_tables() -> TablesOut:
        tables = await schema.tables(state.store)
        return TablesOut([_table_out(t) for t in tables.values()])

    @get(
        "/api/v1/tables/{table_name:str}",
        opt=ro,
        tags=["tables"],
        summary="Describe one table",
        responses=responses(NOT_FOUND),
    )
    async def describe_table(table_name: TableName) -> TableOut:
        return _table_out(await table(table_name))

    @get(
        "/api/v1/tables/{table_name:str}/rows",
        opt=hot_ro,
        tags=["tables"],
        summary="Page through rows (filters, ordering by indexed columns, keyset cursor)",
        description=(
            "Filters are query parameters named after columns: `col=v` (equality), "
            "`col__ne`, `col__gt`, `col__gte`, `col__lt`, `col__lte`, `col__like`, "
            "`col__in=a,b,c`, `col__isnull=true|false`. Pages are keyset-based: pass the "
            "`next` value of a response as `cursor` with the same filters and order."
        ),
        responses={**responses(NOT_FOUND), **ok_response(RowsOut, "A page of rows (ETag set)")},
    )
    async def list_rows(
        request: Request[Any, Any, Any],
        table_name: TableName,
        limit: Annotated[
            int, QueryParameter(ge=1, description="Rows per page (capped by max_rows)")
        ] = DEFAULT_LIMIT,
        order: Annotated[
            str | None,
            QueryParameter(description="An indexed column to order by; prefix '-' for descending"),
        ] = None,
        cursor: Annotated[
            str | None, QueryParameter(description="The `next` of the previous page")
        ] = None,
    ) -> ASGIResponse:
        t = await table(table_name)
        remember(request, t)
        limit = min(limit, settings.max_rows)
        desc = False
        order_col: str | None = None
        if order:
            desc = order.startswith("-")
            name = order[1:] if desc else order
            if name != "rowid" or not t.rowid_key:
                t.column(name)
            if name not in t.indexed:
                raise InvalidRequest(
                    f"cannot order {t.name!r} by {name!r}: not an indexed column "
                    f"(orderable: {', '.join(sorted(t.indexed))})"
                )
            # Ordering by the key's first column is ordering by the key itself.
            if name != t.pk[0]:
                order_col = name
        where, params = _filters(t, request.query_params)
        key_cols = ([order_col] if order_col else []) + list(t.pk)
        if cursor:
            term, cparams = _keyset(t, order_col, desc, _decode_cursor(cursor, len(key_cols)))
            where.append(term)
            params.extend(cparams)
        direction = " DESC" if desc else ""
        order_sql = ", ".join(quote_ident(c) + direction for c in key_cols)
        sql = f"SELECT {t.select_list()} FROM {t.quoted}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_sql} LIMIT ?"
        params.append(limit + 1)
        result = await state.store.query(sql, params, max_rows=limit + 1)
        names = [c.name for c in result.columns]
        values = result.values
        next_cursor = None
        if len(values) > limit:
            values = values[:limit]
            last = dict(zip(names, values[-1], strict=False))
            next_cursor = _encode_cursor([last[c] for c in key_cols])
        rows = [_row_dict(names, r) for r in values]
        return _json_response(request, RowsOut(rows=rows, next=next_cursor))

    @get(
        "/api/v1/tables/{table_name:str}/rows/{key:str}",
        opt=hot_ro,
        tags=["tables"],
        summary="Read one row by primary key",
        responses={**responses(NOT_FOUND), **ok_response(dict[str, Any], "The row (ETag set)")},
    )
    async def get_row(
        request: Request[Any, Any, Any], table_name: TableName, key: RowKey
    ) -> ASGIResponse:
        t = await table(table_name)
        remember(request, t)
        sql = t.sql.get("get")
        if sql is None:
            sql = t.sql["get"] = f"SELECT {t.select_list()} FROM {t.quoted} WHERE {_key_where(t)}"
        store = state.store
        result = await store.query(sql, _parse_key(t, key), max_rows=1)
        if not result.values:
            raise NotFoundError(f"no row in {t.name!r} with key {key}")
        caching = store.read_cache
        if (
            not result.cached
            and isinstance(caching, StoreCache)
            and caching.query.doorkeeper.strict
        ):
            # Mostly new keys (cache/doorkeeper.py): an entry would only push an unread one out
            # of the FIFO (HotCache.put was ~5% of a random row read, py-spy, bench_reads.py).
            request.scope.pop(HOT_SCOPE_KEY, None)  # type: ignore[misc]
        names = [c.name for c in result.columns]
        return _json_response(request, _row_dict(names, result.values[0]))

    def _values(t: TableInfo, data: dict[str, Any]) -> tuple[list[str], list[Any]]:
        cols: list[str] = []
        vals: list[Any] = []
        for name, value in data.items():
            t.column(name)
            cols.append(name)
            vals.append(decode_value(value, f"column {name!r}"))
        return cols, vals

    def _insert_sql(t: TableInfo, cols: list[str], upsert: bool) -> str:
        ret = f" RETURNING {t.select_list()}"
        if not cols:
            return f"INSERT INTO {t.quoted} DEFAULT VALUES{ret}"
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
        return sql + ret

    @post(
        "/api/v1/tables/{table_name:str}/rows",
        opt=rw,
        status_code=CREATED,
        tags=["tables"],
        summary="Insert a row (or a list of rows); upsert on the primary key with ?upsert=true",
        responses=responses(NOT_FOUND, CONFLICT),
    )
    async def insert_rows(
        table_name: TableName,
        data: JSONBody[dict[str, Any] | list[dict[str, Any]]],
        upsert: Annotated[
            bool, QueryParameter(description="On a primary-key conflict, update instead of failing")
        ] = False,
    ) -> WrittenOut:
        t = await table(table_name)
        items = data if isinstance(data, list) else [data]
        if not items:
            raise InvalidRequest("nothing to insert")
        if len(items) > settings.max_rows:
            raise InvalidRequest(f"at most {settings.max_rows} rows per request")
        stmts = []
        for item in items:
            cols, vals = _values(t, item)
            stmts.append((_insert_sql(t, cols, upsert), vals))
        if len(stmts) == 1:
            results = [await state.store.execute(*stmts[0])]
        else:
            results = await state.store.batch(stmts)
        rows: list[dict[str, Any]] = []
        for r in results:
            names = [c.name for c in r.columns]
            rows.extend(_row_dict(names, v) for v in r.values)
        return WrittenOut(rows)

    @patch(
        "/api/v1/tables/{table_name:str}/rows/{key:str}",
        opt=rw,
        status_code=OK,
        tags=["tables"],
        summary="Update columns of one row",
        responses=responses(NOT_FOUND, CONFLICT),
    )
    async def update_row(
        table_name: TableName, key: RowKey, data: JSONBody[dict[str, Any]]
    ) -> dict[str, Any]:
        t = await table(table_name)
        cols, vals = _values(t, data)
        if not cols:
            raise InvalidRequest("nothing to update: send an object of column values")
        sets = ", ".join(f"{quote_ident(c)} = ?" for c in cols)
        sql = f"UPDATE {t.quoted} SET {sets} WHERE {_key_where(t)} RETURNING {t.select_list()}"
        result = await state.store.execute(sql, [*vals, *_parse_key(t, key)])
        if not result.values:
            raise NotFoundError(f"no row in {t.name!r} with key {key}")
        return _row_dict([c.name for c in result.columns], result.values[0])

    @delete(
        "/api/v1/tables/{table_name:str}/rows/{key:str}",
        opt=rw,
        status_code=NO_CONTENT,
        tags=["tables"],
        summary="Delete one row",
        responses=responses(NOT_FOUND),
    )
    async def delete_row(table_name: TableName, key: RowKey) -> None:
        t = await table(table_name)
        sql = f"DELETE FROM {t.quoted} WHERE {_key_where(t)}"
        result = await state.store.execute(sql, _parse_key(t, key))
        if not result.rows_affected:
            raise NotFoundError(f"no row in {t.name!r} with key {key}")

    return [list_tables, describe_table, list_rows, get_row, insert_rows, update_row, delete_row]
