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
import re
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

from ..errors import EdgestoreError, ProtocolError, ReadOnlyError, ResponseTooLarge
from ..storage.policy import classify, permit
from .backend import ColumnLike, ResultLike, RowStreamLike, SessionLike, StoreLike
from .batch import StepOutcome, check_batch, evaluate
from .errors import error_of
from .quota import CallerShare, Role, Slot
from .sqlids import MAX_STORED_SQL, close_sql, resolve_batch, resolve_sql, store_sql, with_sql
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

_SAVEPOINT = re.compile(r"\s*SAVEPOINT\b", re.IGNORECASE)
"""A SAVEPOINT outside a transaction opens one (on the writer)."""

_ROWS_PER_CHUNK = 256
"""Rows read from SQLite (and written to a cursor response) at a time."""

_encode = msgspec.json.Encoder().encode

# Session closes that outlive a cancelled caller (the event loop keeps only weak references).
_CLOSING: set[asyncio.Future[None]] = set()


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
            raise ResponseTooLarge(
                f"the response would be larger than max_response_bytes={self.limit}; "
                "read large results with a cursor, or page through them with LIMIT/OFFSET"
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


class Stream:
    """One Hrana stream on ``store``. Not thread-safe; lives on the event loop."""

    def __init__(
        self,
        store: StoreLike,
        *,
        readonly: bool = False,
        sqls: MutableMapping[int, str] | None = None,
        share: CallerShare | None = None,
    ) -> None:
        self.store = store
        self.readonly = readonly
        self.share = share
        """The caller's share this stream counts in (None: unlimited, e.g. v1 requests)."""
        self._slot: Slot | None = None
        self._starting = False
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
        """Roll back any open transaction and release the connection (idempotent).

        The closing goes on in a task of its own when the caller is cancelled (a WebSocket
        that ends cancels its pending requests, a close_stream among them): the session is
        already detached from this stream, so nobody else would ever close it.
        """
        first = not self.closed
        self.closed = True
        session, self._session = self._session, None
        if first and self.share is not None:
            self.share.close_stream()
        if self._slot is not None:
            # The caller's next transaction may start; the pool still hands it the connection
            # only after the rollback below.
            self._slot.release()
            self._slot = None
        if session is not None:
            closing = asyncio.ensure_future(session.close())
            _CLOSING.add(closing)
            closing.add_done_callback(_CLOSING.discard)
            await asyncio.shield(closing)

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

    async def _admit(self, sql: str) -> None:
        """Before a statement that opens a transaction: take a reader or writer slot of the
        caller's share (waiting for one of the caller's own to end)."""
        if self.share is None or self._slot is not None or not self.is_autocommit:
            return
        kind = begin_kind(sql)
        if kind is None:
            if not _SAVEPOINT.match(sql):
                return
            role: Role = "writer"
        else:
            role = "reader" if kind == "readonly" else "writer"
        self._starting = True
        try:
            self._slot = await self.share.acquire(
                role, lambda: self._starting or not self.is_autocommit
            )
        except BaseException:
            self._starting = False
            raise

    def _settle(self) -> None:
        """After a statement: the slot goes back once no transaction is open."""
        self._starting = False
        if self._slot is not None and self.is_autocommit:
            slot, self._slot = self._slot, None
            slot.release()

    async def _run(self, sql: str, params: Any = None) -> ResultLike:
        session = await self._get_session()
        sql = self._guard(sql)
        await self._admit(sql)
        try:
            result = await session.execute(sql, params)
        finally:
            self._settle()
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

    async def _rows(self, sql: str, params: Any, max_bytes: int = 0) -> RowStreamLike:
        """Start ``sql`` on the session; its rows come a chunk at a time as SQLite produces
        them (one chunk in memory, never the whole result). ``max_bytes`` > 0: storage stops
        reading with RESPONSE_TOO_LARGE once the rows pass it (cursors pass 0)."""
        session = await self._get_session()
        sql = self._guard(sql)
        await self._admit(sql)
        try:
            open_stream: Callable[..., RowStreamLike] | None = getattr(session, "stream", None)
            rows: RowStreamLike
            if open_stream is None:
                rows = _ResultRows(await session.execute(sql, params))
            else:
                rows = open_stream(sql, params, chunk_rows=_ROWS_PER_CHUNK, max_bytes=max_bytes)
            await rows.start()  # on failure the stream has closed itself
        finally:
            self._settle()  # BEGIN/COMMIT/ROLLBACK ran in start()
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
        # Storage counts the rows' sizes as it steps them and stops at what is left here
        # (never below 1: an empty remainder still refuses the first row, not all rows).
        rows = await self._rows(sql, params, max(budget.left, 1) if want_rows else 0)
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
        # In autocommit each read of the cursor holds a reader while it streams: one of the
        # caller's share, for the cursor's life.
        slot: Slot | None = None
        if self.share is not None and self.is_autocommit:
            slot = await self.share.acquire("reader")
        try:
            async for group in self._cursor_steps(steps):
                yield group
        finally:
            if slot is not None:
                slot.release()

    async def _cursor_steps(
        self, steps: list[Mapping[str, Any]]
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
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
