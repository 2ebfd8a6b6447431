"""Tables as resources: list tables, page through rows, read/insert/upsert/update/delete a row.

The table model (``edgestore.tables``) does the work: names are looked up in its catalogue,
never spliced into SQL, values are always bound. This module parses the query string and path
into its calls and renders their results (JSON values, ETags, the hot-response cache).
"""

from __future__ import annotations

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

from ... import tables as model
from ...auth import Role
from ...cache.store_cache import StoreCache
from ...errors import InvalidRequest, NotFoundError
from ...tables import Catalog, Filter, TableInfo, filter_from_text, parse_order, read_page, read_row
from ..encoding import decode_value, encode_row
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
from ..rawroute import RAW_OPT
from ..state import ROLE_OPT, AppState

__all__ = ["HOT_SCOPE_KEY", "RowsOut", "TableOut", "hot_key", "route_handlers"]

HOT_SCOPE_KEY = "edgestore_hot"

_RESERVED = frozenset({"limit", "order", "cursor"})
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


def _json_response(scope: Any, payload: Any) -> RawResponse:
    """A JSON response with an ETag; Not Modified when the client already has this body.

    An ASGIResponse, not a Response: these are the hot read routes, and skipping Litestar's
    Response-to-ASGI conversion saves ~15 µs a request. Their OpenAPI success response is
    declared by hand (``ok_response``).
    """
    body = msgspec.json.encode(payload)
    etag = _etag(body)
    etag_bytes = etag.encode("ascii")
    hot: tuple[HotCache, frozenset[str], Hashable] | None = scope.get(HOT_SCOPE_KEY)
    if hot is not None:
        cache, tables, stamp = hot
        cache.put(hot_key(scope), HotEntry(tables, stamp, body, etag_bytes))
    if _not_modified(scope, etag):
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
    return t.key_values(values)


def _filters(t: TableInfo, query: Any) -> list[Filter]:
    """Filters from the query string (``filter_from_text``), the paging parameters left out."""
    return [
        filter_from_text(t, key, value)
        for key, value in query.multi_items()
        if key not in _RESERVED
    ]


def _decoded(data: dict[str, Any]) -> dict[str, Any]:
    """A JSON object of column values as SQLite values (see ``encoding``)."""
    return {name: decode_value(value, f"column {name!r}") for name, value in data.items()}


def route_handlers(state: AppState, schema: Catalog) -> list[HTTPRouteHandler]:
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

    def remember(scope: Any, t: TableInfo) -> None:
        """Arrange for the response to enter the HotCache, stamped as of *before* the read."""
        if hot_enabled:
            tables = frozenset((t.name,))
            scope[HOT_SCOPE_KEY] = (state.hot, tables, state.store.versions.stamp(tables))

    async def row_response(scope: Any, table_name: str, key: str) -> RawResponse:
        """GET one row: the work of both implementations of the route."""
        t = await table(table_name)
        remember(scope, t)
        store = state.store
        result = await read_row(store, t, _parse_key(t, key))
        if not result.values:
            raise NotFoundError(f"no row in {t.name!r} with key {key}")
        caching = store.read_cache
        door = caching.query.doorkeeper if isinstance(caching, StoreCache) else None
        if not result.cached and door is not None and (door.strict or door.bypass):
            # Mostly new keys, or the query cache is bypassed because it does not pay
            # (cache/doorkeeper.py): an entry would only push an unread one out of the FIFO
            # (HotCache.put was ~5% of a random row read, py-spy, bench_reads.py).
            scope.pop(HOT_SCOPE_KEY, None)
        names = [c.name for c in result.columns]
        return _json_response(scope, _row_dict(names, result.values[0]))

    async def get_row_raw(scope: Scope, receive: Receive, send: Send) -> None:
        """The raw implementation of ``get_row`` (web/rawroute.py)."""
        params = scope["path_params"]
        response = await row_response(scope, params["table_name"], params["key"])
        await response(scope, receive, send)

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
        remember(request.scope, t)
        order_by, descending = parse_order(order) if order else (None, False)
        page = await read_page(
            state.store,
            t,
            where=_filters(t, request.query_params),
            order_by=order_by,
            descending=descending,
            limit=min(limit, settings.max_rows),
            after=cursor,
        )
        rows = [_row_dict(page.names, r) for r in page.values]
        return _json_response(request.scope, RowsOut(rows=rows, next=page.next))

    @get(
        "/api/v1/tables/{table_name:str}/rows/{key:str}",
        opt={**hot_ro, RAW_OPT: get_row_raw},
        tags=["tables"],
        summary="Read one row by primary key",
        responses={**responses(NOT_FOUND), **ok_response(dict[str, Any], "The row (ETag set)")},
    )
    async def get_row(
        request: Request[Any, Any, Any], table_name: TableName, key: RowKey
    ) -> ASGIResponse:
        return await row_response(request.scope, table_name, key)

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
        results = await model.insert_rows(
            state.store, t, [_decoded(i) for i in items], upsert=upsert
        )
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
        result = await model.update_row(state.store, t, _parse_key(t, key), _decoded(data))
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
        if not await model.delete_row(state.store, t, _parse_key(t, key)):
            raise NotFoundError(f"no row in {t.name!r} with key {key}")

    return [list_tables, describe_table, list_rows, get_row, insert_rows, update_row, delete_row]
