"""SQL over HTTP: ``/api/v1/query`` (reads), ``/api/v1/execute`` (one write), ``/api/v1/batch``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody
from litestar.types import Receive, Scope, Send

from ...auth import Role
from ...errors import EdgestoreError, PermissionDenied, ResponseTooLarge
from ...storage.bounds import row_size
from ...storage.policy import Access, classify, permit
from ..encoding import decode_params, encode_rows, encode_value
from ..errors import OK, error_body, responses
from ..middleware import role_of
from ..rawroute import RAW_OPT, decode_body, read_body, send_json
from ..state import ROLE_OPT, AppState

__all__ = [
    "BatchRequest",
    "BatchResponse",
    "ColumnOut",
    "QueryRequest",
    "ResultOut",
    "Statement",
    "result_out",
    "route_handlers",
]

Params = list[Any] | dict[str, Any] | None
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
SQLText = Annotated[str, msgspec.Meta(min_length=1, max_length=1_000_000)]


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A read-only statement. ``params``: a JSON array (positional ``?``) or object (named
    ``:name``); values use the lossless encoding described in the README."""

    sql: SQLText
    params: Params = None
    cache: bool = True
    """Serve from / store into the query cache (a write to a table read invalidates at once)."""
    max_rows: PositiveInt | None = None
    """Cut the result after this many rows (capped by the server's max_rows)."""


class Statement(msgspec.Struct, forbid_unknown_fields=True):
    sql: SQLText
    params: Params = None


class ExecuteRequest(Statement, forbid_unknown_fields=True):
    """One statement, usually a write; RETURNING rows are returned."""

    max_rows: PositiveInt | None = None


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    statements: Annotated[list[Statement], msgspec.Meta(min_length=1, max_length=10_000)]
    atomic: bool = True
    """All statements in one transaction (all or nothing). False: each on its own; a failing
    statement reports its error in its result and the others still run."""


class ColumnOut(msgspec.Struct):
    name: str
    decltype: str | None


class ResultOut(msgspec.Struct):
    columns: list[ColumnOut]
    rows: list[list[Any]]
    """Values: null, numbers, strings, {"$int": "..."}, {"$blob": "<base64>"}, {"$float": ...}."""
    truncated: bool
    cached: bool
    rows_affected: int
    last_insert_rowid: Any
    """A number, {"$int": "..."} beyond 2**53, or null."""


class BatchItemOut(msgspec.Struct, omit_defaults=True):
    result: ResultOut | None = None
    error: dict[str, Any] | None = None


class BatchResponse(msgspec.Struct):
    results: list[BatchItemOut]


_QUERY_DECODER = msgspec.json.Decoder(QueryRequest)
_ENCODER = msgspec.json.Encoder()


def result_out(result: Any) -> ResultOut:
    """A storage Result to its JSON form."""
    return ResultOut(
        columns=[ColumnOut(c.name, c.decltype) for c in result.columns],
        rows=encode_rows(result.values),
        truncated=bool(result.truncated),
        cached=bool(result.cached),
        rows_affected=int(result.rows_affected or 0),
        last_insert_rowid=encode_value(result.last_insert_rowid),
    )


def _access(role: Role) -> Access:
    """The statement policy's name for a token's role."""
    if role >= Role.ADMIN:
        return "admin"
    return "read-write" if role >= Role.RW else "read-only"


def _sql_post(
    path: str, role: Role, summary: str, opt_extra: dict[str, Any] | None = None, **kwargs: Any
) -> post:
    """The decorator of a SQL route: POST, 200 on success, ``role`` needed, the usual errors."""
    return post(
        path,
        status_code=OK,
        opt={ROLE_OPT: role, **(opt_extra or {})},
        tags=["sql"],
        summary=summary,
        responses=responses(),
        **kwargs,
    )


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    settings = state.settings

    def row_cap(requested: int | None) -> int:
        return min(requested or settings.max_rows, settings.max_rows)

    async def run_query(data: QueryRequest) -> ResultOut:
        """POST /api/v1/query: the work of both implementations of the route."""
        result = await state.store.query(
            data.sql,
            decode_params(data.params),
            cache=None if data.cache else False,
            max_rows=row_cap(data.max_rows),
        )
        return result_out(result)

    async def query_raw(scope: Scope, receive: Receive, send: Send) -> None:
        """The raw implementation of ``query`` (web/rawroute.py)."""
        body = await read_body(receive, settings.max_body_bytes, scope)
        result = await run_query(decode_body(body, _QUERY_DECODER, scope))
        await send_json(send, OK, _ENCODER.encode(result))

    @_sql_post(
        "/api/v1/query", Role.RO, "Run one read-only statement", opt_extra={RAW_OPT: query_raw}
    )
    async def query(data: JSONBody[QueryRequest]) -> ResultOut:
        return await run_query(data)

    @_sql_post("/api/v1/execute", Role.RW, "Run one statement (a write goes through group commit)")
    async def execute(data: JSONBody[ExecuteRequest], request: Request[Any, Any, Any]) -> ResultOut:
        permit(classify(data.sql), _access(role_of(request)))
        result = await state.store.execute(
            data.sql, decode_params(data.params), max_rows=row_cap(data.max_rows)
        )
        return result_out(result)

    @_sql_post(
        "/api/v1/batch",
        Role.RO,
        "Run several statements, atomically by default",
        description="A caller with the ro role may send a batch of read-only statements only.",
    )
    async def batch(data: JSONBody[BatchRequest], request: Request[Any, Any, Any]) -> BatchResponse:
        stmts = [(s.sql, decode_params(s.params)) for s in data.statements]
        role = role_of(request)
        for sql, _ in stmts:
            permit(classify(sql), _access(role))
            if role < Role.RW and not state.store.deps(sql).readonly:
                raise PermissionDenied("this batch writes; that needs the 'rw' role")
        if data.atomic:
            results = await state.store.batch(stmts, max_rows=settings.max_rows)
            return BatchResponse([BatchItemOut(result=result_out(r)) for r in results])
        items: list[BatchItemOut] = []
        # One session for the batch: PRAGMA foreign_keys = OFF holds for the statements after
        # it (and the connection gets the default back when the session closes). The results
        # together make one response: one byte budget for all of them (each statement is
        # bounded as it runs; one that would pass what is left reports it).
        left = settings.max_response_bytes
        async with await state.store.session() as session:
            for sql, params in stmts:
                try:
                    r = await session.execute(sql, params, max_rows=settings.max_rows)
                    size = sum(row_size(row) for row in r.values)
                    if size > left:
                        raise ResponseTooLarge(
                            "the batch's results together are larger than "
                            f"max_response_bytes={settings.max_response_bytes}"
                        )
                    left -= size
                except EdgestoreError as exc:
                    items.append(BatchItemOut(error=error_body(exc)["error"]))
                else:
                    items.append(BatchItemOut(result=result_out(r)))
        return BatchResponse(items)

    return [query, execute, batch]
