"""SQL over HTTP: ``/api/v1/query`` (reads), ``/api/v1/execute`` (one write), ``/api/v1/batch``."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from ...auth import Role
from ...errors import EdgestoreError, PermissionDenied
from ...storage.policy import Access, classify, permit
from ..encoding import decode_params, encode_rows, encode_value
from ..errors import OK, error_body, responses
from ..middleware import role_of
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


def _sql_post(path: str, role: Role, summary: str, **kwargs: Any) -> post:
    """The decorator of a SQL route: POST, 200 on success, ``role`` needed, the usual errors."""
    return post(
        path,
        status_code=OK,
        opt={ROLE_OPT: role},
        tags=["sql"],
        summary=summary,
        responses=responses(),
        **kwargs,
    )


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    settings = state.settings

    def row_cap(requested: int | None) -> int:
        return min(requested or settings.max_rows, settings.max_rows)

    @_sql_post("/api/v1/query", Role.RO, "Run one read-only statement")
    async def query(data: JSONBody[QueryRequest]) -> ResultOut:
        result = await state.store.query(
            data.sql,
            decode_params(data.params),
            cache=None if data.cache else False,
            max_rows=row_cap(data.max_rows),
        )
        return result_out(result)

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
            results = await state.store.batch(stmts)
            return BatchResponse([BatchItemOut(result=result_out(r)) for r in results])
        items: list[BatchItemOut] = []
        # One session for the batch: PRAGMA foreign_keys = OFF holds for the statements after
        # it (and the connection gets the default back when the session closes).
        async with await state.store.session() as session:
            for sql, params in stmts:
                try:
                    r = await session.execute(sql, params, max_rows=settings.max_rows)
                except EdgestoreError as exc:
                    items.append(BatchItemOut(error=error_body(exc)["error"]))
                else:
                    items.append(BatchItemOut(result=result_out(r)))
        return BatchResponse(items)

    return [query, execute, batch]
