"""A Hrana stream: one storage Session plus the requests that run on it.

The same Stream serves HTTP pipelines (reached by baton) and WebSocket streams (reached by
stream id). Requests on one stream run one at a time, in arrival order (``lock`` is FIFO).

Every statement passes the statement policy (``storage.policy``) for the caller's role before
anything is prepared. Read-only callers (an ``ro`` token) are further held to statements the
store's authorizer-derived ``deps(sql).readonly`` calls read-only; ``BEGIN``/``BEGIN DEFERRED``
become ``BEGIN TRANSACTION READONLY`` (a reader, never the writer); ``BEGIN IMMEDIATE``/
``EXCLUSIVE``, ``SAVEPOINT`` and settings are refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Mapping,
    MutableMapping,
    Sequence,
)
from contextlib import aclosing
from typing import Any

import msgspec

from ..errors import EdgestoreError, ProtocolError, ReadOnlyError
from ..storage.policy import classify, permit
from .backend import ColumnLike, ResultLike, RowStreamLike, SessionLike, StoreLike
from .batch import StepOutcome, check_batch, evaluate
from .errors import error_of
from .sqltext import begin_kind, one_statement, split_statements
from .values import Value, decode_args, encode_row

__all__ = [
    "MAX_STORED_SQL",
    "ResponseBudget",
    "Stream",
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
"""Rows read from SQLite (and written to a cursor response) at a time."""

_encode = msgspec.json.Encoder().encode


class ResponseBudget:
    """Bytes of rows one response may still carry (``max_response_bytes``). One budget is
    shared by every statement of an HTTP pipeline or a batch, so many results cannot add up
    past it either; cursors have none (they hold one chunk at a time)."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, size: int) -> None:
        """Spend ``size`` bytes; RESPONSE_TOO_LARGE (as libSQL says it) when there are none.
        The refused bytes stay unspent."""
        if size > self.left:
            raise ProtocolError(
                f"the response would be larger than max_response_bytes={self.limit}; "
                "read large results with a cursor, or page through them with LIMIT/OFFSET",
                code="RESPONSE_TOO_LARGE",
            )
        self.left -= size

    def refund(self, size: int) -> None:
        """Give back what a statement that failed after all had spent (its rows are not sent)."""
        self.left += size


def _cols(columns: Sequence[ColumnLike]) -> list[dict[str, Any]]:
    return [{"name": c.name, "decltype": c.decltype} for c in columns]


class _ResultRows:
    """A whole Result as a row stream, for sessions without ``stream`` (read whole first)."""

    def __init__(self, result: ResultLike) -> None:
        self._result = result
        self.columns = result.columns
        self.rows_affected = result.rows_affected
        self.last_insert_rowid = result.last_insert_rowid

    async def start(self) -> Sequence[ColumnLike]:
        return self.columns

    def __aiter__(self) -> AsyncIterator[Sequence[Sequence[Value]]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Sequence[Sequence[Value]]]:
        values = self._result.values
        for at in range(0, len(values), _ROWS_PER_CHUNK):
            yield values[at : at + _ROWS_PER_CHUNK]

    async def aclose(self) -> None:
        return None


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
        """The SQL to run for this caller: the statement policy first (nothing prepared yet),
        then read-only streams refuse writes here."""
        stmt = classify(sql)
        permit(stmt, "read-only" if self.readonly else "read-write")
        if not self.readonly:
            return sql
        if stmt.verb == "begin":
            return "BEGIN TRANSACTION READONLY"
        if stmt.verb in ("end", "release", "rollback_to") or stmt.setting is not None:
            # Ends a read transaction, or reads PRAGMA foreign_keys (setting it is refused).
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

    def new_budget(self) -> ResponseBudget:
        """A response budget of ``max_response_bytes``."""
        return ResponseBudget(self.store.settings.max_response_bytes)

    async def _rows(self, sql: str, params: Any) -> RowStreamLike:
        """Start ``sql`` on the session; its rows come a chunk at a time as SQLite produces
        them (one chunk in memory, never the whole result)."""
        session = await self._get_session()
        sql = self._guard(sql)
        open_stream: Callable[..., RowStreamLike] | None = getattr(session, "stream", None)
        rows: RowStreamLike
        if open_stream is None:
            rows = _ResultRows(await session.execute(sql, params))
        else:
            rows = open_stream(sql, params, chunk_rows=_ROWS_PER_CHUNK)
        await rows.start()  # on failure the stream has closed itself
        return rows

    async def execute(
        self, stmt: Mapping[str, Any], budget: ResponseBudget | None = None
    ) -> dict[str, Any]:
        """Run one Stmt; returns its StmtResult. Its rows spend ``budget`` (a fresh
        ``max_response_bytes`` when None): RESPONSE_TOO_LARGE once that is exceeded."""
        sql = one_statement(resolve_sql(stmt, self.sqls))
        params = decode_args(stmt)
        want_rows = stmt.get("want_rows", True) is not False
        if budget is None:
            budget = self.new_budget()
        rows = await self._rows(sql, params)
        parts: list[bytes] = []
        spent = 0
        try:
            async for chunk in rows:
                if want_rows and chunk:
                    # Encoded a chunk at a time: the size is exact, memory stops at the
                    # budget, and the bytes go into the response as they are (msgspec.Raw).
                    part = _encode([encode_row(r) for r in chunk])
                    budget.take(len(part))
                    spent += len(part)
                    parts.append(part[1:-1])
        except BaseException:
            budget.refund(spent)
            raise
        finally:
            await rows.aclose()
        rowid = rows.last_insert_rowid
        return {
            "cols": _cols(rows.columns),
            "rows": msgspec.Raw(b"[" + b",".join(parts) + b"]"),
            "affected_row_count": rows.rows_affected,
            "last_insert_rowid": None if rowid is None else str(rowid),
        }

    async def batch(self, batch: Any, budget: ResponseBudget | None = None) -> dict[str, Any]:
        """Run a Batch; returns its BatchResult (a failed step does not stop the batch). All
        steps' rows spend one ``budget``."""
        steps = check_batch(batch)
        if budget is None:
            budget = self.new_budget()
        outcomes: list[StepOutcome] = [None] * len(steps)
        results: list[dict[str, Any] | None] = [None] * len(steps)
        errors: list[dict[str, Any] | None] = [None] * len(steps)
        for i, step in enumerate(steps):
            if not evaluate(step.get("condition"), outcomes, self.is_autocommit):
                continue
            try:
                results[i] = await self.execute(step["stmt"], budget)
                outcomes[i] = True
            except Exception as exc:
                errors[i] = error_of(exc)
                outcomes[i] = False
        return {"step_results": results, "step_errors": errors}

    async def cursor_chunks(self, batch: Any) -> AsyncGenerator[list[dict[str, Any]], None]:
        """The cursor entries of a Batch in groups, as the statements produce rows: a step's
        ``step_begin``, its rows a chunk at a time, then ``step_end`` or ``step_error``.

        Close it (``aclose``) when abandoning it early: that ends the running statement and
        gives its connection back.
        """
        steps = check_batch(batch)
        outcomes: list[StepOutcome] = [None] * len(steps)
        for i, step in enumerate(steps):
            if not evaluate(step.get("condition"), outcomes, self.is_autocommit):
                continue
            stmt = step["stmt"]
            try:
                sql = one_statement(resolve_sql(stmt, self.sqls))
                rows = await self._rows(sql, decode_args(stmt))
            except Exception as exc:
                outcomes[i] = False
                yield [{"type": "step_error", "step": i, "error": error_of(exc)}]
                continue
            want_rows = stmt.get("want_rows", True) is not False
            try:
                yield [{"type": "step_begin", "step": i, "cols": _cols(rows.columns)}]
                async for chunk in rows:
                    if want_rows and chunk:
                        yield [{"type": "row", "row": encode_row(r)} for r in chunk]
            except Exception as exc:
                # Failed after step_begin (and maybe rows): Hrana 3 allows a step_error for
                # the step under way.
                outcomes[i] = False
                yield [{"type": "step_error", "step": i, "error": error_of(exc)}]
                continue
            finally:
                await rows.aclose()
            outcomes[i] = True
            rowid = rows.last_insert_rowid
            rowid_text = None if rowid is None else str(rowid)
            # The Rust cursor reader reads "last_inserted_rowid" (sic): send both spellings.
            yield [
                {
                    "type": "step_end",
                    "affected_row_count": rows.rows_affected,
                    "last_insert_rowid": rowid_text,
                    "last_inserted_rowid": rowid_text,
                }
            ]

    async def cursor(self, batch: Any) -> AsyncGenerator[dict[str, Any], None]:
        """The cursor entries of a Batch one at a time (WebSocket ``fetch_cursor``)."""
        async with aclosing(self.cursor_chunks(batch)) as groups:
            async for group in groups:
                for entry in group:
                    yield entry

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
    async def request(self, req: Any, budget: ResponseBudget | None = None) -> dict[str, Any]:
        """Run one pipeline request; returns its response object (raises on failure). Rows
        spend ``budget`` (shared by a whole HTTP pipeline; None: one per request)."""
        if not isinstance(req, Mapping):
            raise ProtocolError("each request must be an object")
        kind = req.get("type")
        self.last_used = time.monotonic()
        if kind == "execute":
            stmt = req.get("stmt")
            if not isinstance(stmt, Mapping):
                raise ProtocolError("execute needs a stmt object")
            return {"type": "execute", "result": await self.execute(stmt, budget)}
        if kind == "batch":
            return {"type": "batch", "result": await self.batch(req.get("batch"), budget)}
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
