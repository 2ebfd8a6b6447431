"""A Hrana stream: one storage Session plus the requests that run on it.

The same Stream serves HTTP pipelines (reached by baton) and WebSocket streams (reached by
stream id). Requests on one stream run one at a time, in arrival order (``lock`` is FIFO).

Read-only callers (an ``ro`` token) get a stream that refuses writes before they reach
SQLite: a statement is allowed when the store's authorizer-derived ``deps(sql).readonly`` says
so; ``BEGIN``/``BEGIN DEFERRED`` become ``BEGIN TRANSACTION READONLY`` (a reader, never the
writer) and ``BEGIN IMMEDIATE``/``EXCLUSIVE`` are refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, MutableMapping
from typing import Any

from ..errors import EdgestoreError, ProtocolError, ReadOnlyError
from .backend import ResultLike, SessionLike, StoreLike
from .batch import Outcome, check_batch, evaluate
from .errors import error_of
from .sqltext import begin_kind, is_txn_control, one_statement, split_statements
from .values import decode_args, encode_row

__all__ = [
    "MAX_STORED_SQL",
    "Stream",
    "chunked",
    "close_sql",
    "resolve_batch",
    "resolve_sql",
    "stmt_result",
    "store_sql",
    "with_sql",
]

MAX_STORED_SQL = 1000
"""Most SQL texts one stream (HTTP) or connection (WebSocket) may hold with store_sql."""

_ROWS_PER_CHUNK = 256


def stmt_result(result: ResultLike, want_rows: bool = True) -> dict[str, Any]:
    """A Hrana StmtResult; ``last_insert_rowid`` is always present (strict clients need it)."""
    rowid = result.last_insert_rowid
    return {
        "cols": [{"name": c.name, "decltype": c.decltype} for c in result.columns],
        "rows": [encode_row(r) for r in result.values] if want_rows else [],
        "affected_row_count": result.rows_affected,
        "last_insert_rowid": None if rowid is None else str(rowid),
    }


def resolve_sql(obj: Mapping[str, Any], sqls: Mapping[int, str]) -> str:
    """The SQL text of a Stmt / sequence / describe: its ``sql``, or the stored ``sql_id``."""
    sql = obj.get("sql")
    sql_id = obj.get("sql_id")
    if sql is not None:
        if sql_id is not None:
            raise ProtocolError("give sql or sql_id, not both")
        if not isinstance(sql, str):
            raise ProtocolError("sql must be a string")
        return sql
    if sql_id is None:
        raise ProtocolError("sql or sql_id is required")
    if isinstance(sql_id, bool) or not isinstance(sql_id, int):
        raise ProtocolError("sql_id must be an integer")
    try:
        return sqls[sql_id]
    except KeyError:
        raise ProtocolError(f"no SQL stored under sql_id {sql_id}", code="SQL_NOT_FOUND") from None


def with_sql(obj: Mapping[str, Any], sqls: Mapping[int, str]) -> dict[str, Any]:
    """A copy of a Stmt-like object with ``sql_id`` replaced by the stored text."""
    out = dict(obj)
    out["sql"] = resolve_sql(obj, sqls)
    out.pop("sql_id", None)
    return out


def resolve_batch(batch: Any, sqls: Mapping[int, str]) -> dict[str, Any]:
    """A copy of a Batch with every step's sql_id resolved (done when a WebSocket request
    arrives, so a later close_sql cannot pull the text from under a queued request)."""
    steps = check_batch(batch)
    return {"steps": [{**s, "stmt": with_sql(s["stmt"], sqls)} for s in steps]}


def store_sql(sqls: MutableMapping[int, str], req: Mapping[str, Any]) -> None:
    """``store_sql``: remember ``req.sql`` under ``req.sql_id`` in ``sqls``."""
    sql_id = req.get("sql_id")
    sql = req.get("sql")
    if isinstance(sql_id, bool) or not isinstance(sql_id, int) or not isinstance(sql, str):
        raise ProtocolError("store_sql needs an integer sql_id and a sql string")
    if sql_id in sqls:
        raise ProtocolError(f"sql_id {sql_id} is already in use")
    if len(sqls) >= MAX_STORED_SQL:
        raise ProtocolError(
            f"at most {MAX_STORED_SQL} SQL texts can be stored", code="SQL_STORE_TOO_MANY"
        )
    sqls[sql_id] = sql


def close_sql(sqls: MutableMapping[int, str], req: Mapping[str, Any]) -> None:
    """``close_sql``: forget ``req.sql_id`` (unknown ids are fine: closing is idempotent)."""
    sql_id = req.get("sql_id")
    if isinstance(sql_id, bool) or not isinstance(sql_id, int):
        raise ProtocolError("close_sql needs an integer sql_id")
    sqls.pop(sql_id, None)


class Stream:
    """One Hrana stream on ``store``. Not thread-safe; lives on the event loop."""

    def __init__(
        self,
        store: StoreLike,
        *,
        readonly: bool = False,
        sqls: MutableMapping[int, str] | None = None,
    ) -> None:
        self.store = store
        self.readonly = readonly
        self.sqls: MutableMapping[int, str] = {} if sqls is None else sqls
        self.lock = asyncio.Lock()
        self.closed = False
        self.last_used = time.monotonic()
        self._session: SessionLike | None = None

    # --- state ---------------------------------------------------------------------------
    @property
    def is_autocommit(self) -> bool:
        return self._session is None or self._session.is_autocommit

    async def close(self) -> None:
        """Roll back any open transaction and release the connection (idempotent)."""
        self.closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _get_session(self) -> SessionLike:
        if self.closed:
            raise ProtocolError("the stream is closed", code="STREAM_CLOSED")
        if self._session is None:
            self._session = await self.store.session()
        return self._session

    # --- statements ----------------------------------------------------------------------
    def _guard(self, sql: str) -> str:
        """The SQL to run for this caller: read-only streams refuse writes here."""
        if not self.readonly:
            return sql
        kind = begin_kind(sql)
        if kind is not None:
            if kind in ("immediate", "exclusive"):
                raise ReadOnlyError(
                    f"BEGIN {kind.upper()} needs write access; this token is read-only",
                    code="SQLITE_READONLY",
                )
            return "BEGIN TRANSACTION READONLY"
        if is_txn_control(sql):
            return sql
        try:
            deps = self.store.deps(sql)
        except EdgestoreError:
            return sql  # let SQLite report the real error when it runs
        if not deps.readonly:
            raise ReadOnlyError(
                "this token is read-only; the statement writes", code="SQLITE_READONLY"
            )
        return sql

    async def _run(self, sql: str, params: Any = None) -> ResultLike:
        session = await self._get_session()
        result = await session.execute(self._guard(sql), params)
        if result.truncated:
            raise ProtocolError(
                "the result has more rows than this server returns at once (max_rows); "
                "page through it with LIMIT/OFFSET or a cursor",
                code="RESPONSE_TOO_LARGE",
            )
        return result

    async def execute(self, stmt: Mapping[str, Any]) -> dict[str, Any]:
        """Run one Stmt; returns its StmtResult."""
        sql = one_statement(resolve_sql(stmt, self.sqls))
        params = decode_args(stmt)
        result = await self._run(sql, params)
        return stmt_result(result, stmt.get("want_rows", True) is not False)

    async def batch(self, batch: Any) -> dict[str, Any]:
        """Run a Batch; returns its BatchResult (a failed step does not stop the batch)."""
        steps = check_batch(batch)
        outcomes: list[Outcome] = [None] * len(steps)
        results: list[dict[str, Any] | None] = [None] * len(steps)
        errors: list[dict[str, Any] | None] = [None] * len(steps)
        for i, step in enumerate(steps):
            if not evaluate(step.get("condition"), outcomes, self.is_autocommit):
                continue
            try:
                results[i] = await self.execute(step["stmt"])
                outcomes[i] = True
            except Exception as exc:
                errors[i] = error_of(exc)
                outcomes[i] = False
        return {"step_results": results, "step_errors": errors}

    async def cursor(self, batch: Any) -> AsyncIterator[dict[str, Any]]:
        """The cursor entries of a Batch, produced step by step as each runs."""
        steps = check_batch(batch)
        outcomes: list[Outcome] = [None] * len(steps)
        for i, step in enumerate(steps):
            if not evaluate(step.get("condition"), outcomes, self.is_autocommit):
                continue
            stmt = step["stmt"]
            try:
                sql = one_statement(resolve_sql(stmt, self.sqls))
                result = await self._run(sql, decode_args(stmt))
            except Exception as exc:
                outcomes[i] = False
                yield {"type": "step_error", "step": i, "error": error_of(exc)}
                continue
            outcomes[i] = True
            yield {
                "type": "step_begin",
                "step": i,
                "cols": [{"name": c.name, "decltype": c.decltype} for c in result.columns],
            }
            if stmt.get("want_rows", True) is not False:
                for row in result.values:
                    yield {"type": "row", "row": encode_row(row)}
            rowid = result.last_insert_rowid
            rowid_text = None if rowid is None else str(rowid)
            # The Rust cursor reader reads "last_inserted_rowid" (sic): send both spellings.
            yield {
                "type": "step_end",
                "affected_row_count": result.rows_affected,
                "last_insert_rowid": rowid_text,
                "last_inserted_rowid": rowid_text,
            }

    async def sequence(self, req: Mapping[str, Any]) -> None:
        """Run every statement of a script without arguments; the first error stops it."""
        for sql in split_statements(resolve_sql(req, self.sqls)):
            await self._run(sql)

    async def describe(self, req: Mapping[str, Any]) -> dict[str, Any]:
        sql = one_statement(resolve_sql(req, self.sqls))
        if begin_kind(sql) is not None:
            # libSQL-only forms (BEGIN TRANSACTION READONLY) do not prepare in SQLite.
            return {"params": [], "cols": [], "is_explain": False, "is_readonly": True}
        return await self._describe(sql)

    async def _describe(self, sql: str) -> dict[str, Any]:
        # Through the session: inside a transaction it prepares on the pinned connection, so
        # tables the transaction created are known (the Rust client describes every statement
        # before it runs it); outside one it is the store's describe.
        session = self._session
        desc = await (session.describe(sql) if session is not None else self.store.describe(sql))
        return {
            "params": [{"name": p} for p in desc.params],
            "cols": [{"name": c.name, "decltype": c.decltype} for c in desc.columns],
            "is_explain": desc.is_explain,
            "is_readonly": desc.is_readonly,
        }

    def store_sql(self, req: Mapping[str, Any]) -> None:
        store_sql(self.sqls, req)

    def close_sql(self, req: Mapping[str, Any]) -> None:
        close_sql(self.sqls, req)

    # --- one pipeline request -------------------------------------------------------------
    async def request(self, req: Any) -> dict[str, Any]:
        """Run one pipeline request; returns its response object (raises on failure)."""
        if not isinstance(req, Mapping):
            raise ProtocolError("each request must be an object")
        kind = req.get("type")
        self.last_used = time.monotonic()
        if kind == "execute":
            stmt = req.get("stmt")
            if not isinstance(stmt, Mapping):
                raise ProtocolError("execute needs a stmt object")
            return {"type": "execute", "result": await self.execute(stmt)}
        if kind == "batch":
            return {"type": "batch", "result": await self.batch(req.get("batch"))}
        if kind == "sequence":
            await self.sequence(req)
            return {"type": "sequence"}
        if kind == "describe":
            return {"type": "describe", "result": await self.describe(req)}
        if kind == "store_sql":
            self.store_sql(req)
            return {"type": "store_sql"}
        if kind == "close_sql":
            self.close_sql(req)
            return {"type": "close_sql"}
        if kind == "get_autocommit":
            return {"type": "get_autocommit", "is_autocommit": self.is_autocommit}
        if kind == "close":
            await self.close()
            return {"type": "close"}
        raise ProtocolError(f"unknown request type {kind!r}", code="UNKNOWN_REQUEST")


async def chunked(entries: AsyncIterator[dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    """Group cursor entries so a large result is written in a few hundred rows per chunk."""
    buf: list[dict[str, Any]] = []
    async for entry in entries:
        buf.append(entry)
        if len(buf) >= _ROWS_PER_CHUNK or entry["type"] != "row":
            yield buf
            buf = []
    if buf:
        yield buf
