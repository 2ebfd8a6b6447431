"""Rows of one statement in chunks, read as SQLite produces them (Hrana cursors, big reads).

``Store.stream(sql)`` and ``Session.stream(sql)`` return a :class:`RowStream`::

    async with store.stream("SELECT * FROM big") as rows:
        columns = await rows.start()    # runs the statement up to its first chunk
        async for chunk in rows:        # lists of at most chunk_rows row tuples
            ...

Where the rows come from:

* a read-only statement in autocommit holds one reader from ``start()`` until the stream is
  exhausted, closed (``aclose``) or cancelled. The first chunk runs inline on the event loop
  when it fits ``inline_budget`` (as ``Store.query`` does), every other chunk on the pool's
  reader threads: memory is bounded by one chunk, never by the result;
* a read-only statement inside a Session's transaction reads on the pinned connection and sees
  the transaction's uncommitted rows. COMMIT, ROLLBACK or a savepoint statement on the session,
  and the end of the transaction (timeout, close), close such a stream first;
* anything else (writes, also with RETURNING; BEGIN/COMMIT in a session; ``max_readers=0``)
  runs through ``execute`` exactly as before (group commit, table versions, commit listeners)
  and its Result is handed out in chunks.

Bounds: ``statement_timeout`` bounds the time spent inside SQLite summed over all chunks, what
one execute may spend. A stream holding a reader is a read transaction: once older than
``transaction_timeout`` it is closed and the next fetch raises TransactionTimeout, so a consumer
that stops reading cannot keep a reader (and the WAL snapshot it pins) for ever.

Cancellation: a chunk being read on a thread cannot be abandoned half-way, so a cancelled fetch
interrupts the reader (a pinned connection finishes its chunk) and the stream closes in a task of
its own once the thread returns; ``aclose`` survives its caller's cancellation the same way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import apsw

from ..errors import EdgestoreError, InvalidRequest, StoreClosedError, TransactionTimeout
from .analysis import Analysis
from .bounds import ByteBudget, length_limit, restore_length, take_rows, too_big
from .connection import Conn
from .execution import result_columns
from .live_statement import (
    CHUNK_BYTES,
    LiveStatement,
    Rows,
    execute_bound,
    fetch_rows,
    open_cursor,
    open_pinned,
    time_left,
)
from .params import check_params
from .results import Column, Params, Result, Value
from .sqlerrors import translate

if TYPE_CHECKING:
    from .engine import Engine
    from .pin import Pin

__all__ = ["DEFAULT_CHUNK_ROWS", "RowStream", "open_autocommit", "open_on_pin", "open_on_reader"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Opener = Callable[["RowStream"], Awaitable[None]]

DEFAULT_CHUNK_ROWS = 256
"""Rows per chunk unless the caller says otherwise."""

# Cleanup started where nobody can await it (a cancelled fetch, expiry): the event loop keeps
# only weak references to tasks.
_TASKS: set[asyncio.Task[None]] = set()


class RowStream:
    """The rows of one statement, in chunks of at most ``chunk_rows``, as SQLite produces them.

    Nothing runs until :meth:`start` (or the first ``async for`` step). ``columns`` is set by
    ``start``; ``rows_affected`` and ``last_insert_rowid`` are final once ``start`` returned
    (streamed statements are reads: 0 and None). The connection is given back when the rows
    are exhausted, on :meth:`aclose` (also ``async with``), on an error, and when the task
    reading it is cancelled. A failed chunk raises the statement's error once; then the stream
    is over.
    """

    __slots__ = (
        "_closed",
        "_closer",
        "_done",
        "_error",
        "_fetching",
        "_first",
        "_inflight",
        "_live",
        "_offset",
        "_on_close",
        "_opener",
        "_started",
        "_timer",
        "_values",
        "chunk_rows",
        "columns",
        "last_insert_rowid",
        "max_bytes",
        "rows_affected",
        "store",
        "streamed",
    )

    def __init__(
        self,
        store: Engine,
        opener: Opener,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_bytes: int = 0,
    ) -> None:
        if type(chunk_rows) is not int or chunk_rows < 1:
            raise InvalidRequest("chunk_rows must be a positive integer")
        self.store = store
        self.chunk_rows = chunk_rows
        self.max_bytes = max_bytes
        """Most bytes of rows the whole stream may read (0: unbounded, chunks of at most
        CHUNK_BYTES); past it the fetch raises ResponseTooLarge."""
        self.columns: tuple[Column, ...] = ()
        self.rows_affected = 0
        self.last_insert_rowid: int | None = None
        self.streamed = False
        """True when rows are read as the consumer asks for them; False when every row was
        read at once (a result that fit in the first chunk, or one from ``execute``)."""
        self._opener: Opener | None = opener
        self._started = False
        self._first: Rows | None = None
        self._values: list[tuple[Value, ...]] | None = None
        self._offset = 0
        self._live: LiveStatement | None = None
        self._done = False
        self._closed = False
        self._fetching = False
        self._inflight: asyncio.Future[Any] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._error: EdgestoreError | None = None
        self._on_close: list[Callable[[RowStream], None]] = []

    # -- the consumer's side ------------------------------------------------------------

    async def start(self) -> tuple[Column, ...]:
        """Run the statement up to its first chunk and return its columns (idempotent).

        Raises the statement's error; the stream is then closed.
        """
        opener = self._opener
        if opener is not None:
            self._opener = None
            self._started = True
            try:
                await opener(self)
            except BaseException:
                self._done = True
                await self.aclose()
                raise
        elif not self._started:
            raise StoreClosedError("the row stream was closed before it started")
        return self.columns

    def __aiter__(self) -> RowStream:
        return self

    async def __anext__(self) -> Rows:
        if self._opener is not None:
            await self.start()
        first = self._first
        if first is not None:
            self._first = None
            if first:
                return first
        values = self._values
        if values is not None:
            at = self._offset
            if at < len(values):
                self._offset = at + self.chunk_rows
                return values[at : at + self.chunk_rows]
            self._values = None
            self._done = True
            self._finished()
        live = self._live
        if live is None or self._done or self._closed:
            error, self._error = self._error, None
            if error is not None:
                raise error
            raise StopAsyncIteration
        if self._fetching:
            raise RuntimeError("another task is already reading this row stream")
        self._fetching = True
        try:
            fetch = functools.partial(
                fetch_rows, live, self.chunk_rows, time_left(self.store, live)
            )
            rows, done = await self._call(live, fetch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # Closed or expired from outside while reading: say that, not "interrupted".
            error, self._error = self._error, None
            if error is None and live.pin is not None and live.pin.expired:
                error = live.pin.timeout_error()
            self._done = True
            await self.aclose()
            if error is not None and error is not exc:
                raise error from exc
            raise
        finally:
            self._fetching = False
        if done:
            self._release_live()
        if not rows:
            raise StopAsyncIteration
        return rows

    async def aclose(self) -> None:
        """End the statement and give its connection back (idempotent). The cleanup goes on
        in a task of its own if the caller is cancelled meanwhile."""
        self._opener = None
        if self._closer is None and self._live is None and self._inflight is None:
            self._closed = True
            self._done = True
            self._first = None
            self._values = None
            self._cancel_timer()
            self._finished()
            return
        await asyncio.shield(self._spawn_close())

    async def abort(self, error: EdgestoreError) -> None:
        """Close on behalf of someone else (the session closed): the consumer's next fetch
        raises ``error`` instead of ending as if every row had been read."""
        if not self._done and self._error is None:
            self._error = error
        await self.aclose()

    async def __aenter__(self) -> RowStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the openers' side --------------------------------------------------------------

    def on_close(self, callback: Callable[[RowStream], None]) -> None:
        """Call ``callback(self)`` once the stream has closed."""
        self._on_close.append(callback)

    def set_result(self, result: Result) -> None:
        """Hand out a Result that ``execute`` produced (no connection is held)."""
        self.columns = result.columns
        self.rows_affected = result.rows_affected
        self.last_insert_rowid = result.last_insert_rowid
        self._values = result.values

    def _attach(self, live: LiveStatement) -> None:
        self._live = live
        if self.max_bytes > 0:
            live.budget = ByteBudget(self.max_bytes)
        if live.pin is None:
            timeout = self.store.settings.transaction_timeout
            self._timer = self.store.loop.call_later(timeout, self._expire)

    def _detach(self) -> None:
        """The opener found nothing to stream on ``live`` (not a read)."""
        live, self._live = self._live, None
        self._cancel_timer()
        if live is not None:
            live.closed = True
            live.release()

    def _opened(self, columns: tuple[Column, ...], rows: Rows, done: bool) -> None:
        self.columns = columns
        self._first = rows
        if done:
            self._release_live()
        else:
            self.streamed = True

    async def _call(self, live: LiveStatement, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` on ``live``'s thread. If the caller is cancelled the thread still
        finishes its chunk (a reader is interrupted) and the stream closes after it."""
        future = asyncio.ensure_future(live.run(fn))
        self._inflight = future
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                live.interrupt()
            self._spawn_close()
            raise
        self._inflight = None
        return result

    # -- ending -------------------------------------------------------------------------

    def _release_live(self) -> None:
        """The statement ended on its thread: give the connection back now."""
        live, self._live = self._live, None
        self._done = True
        self._cancel_timer()
        if live is not None:
            live.closed = True
            live.release()
        self._finished()

    def _expire(self) -> None:
        self._timer = None
        if self._live is None or self._closed:
            return
        limit = self.store.settings.transaction_timeout
        self._error = TransactionTimeout(
            f"the row stream held a reader longer than transaction_timeout={limit:g}s "
            "and was closed"
        )
        self._spawn_close()

    def _spawn_close(self) -> asyncio.Task[None]:
        closer = self._closer
        if closer is None:
            self._closed = True
            closer = self.store.loop.create_task(self._close())
            _TASKS.add(closer)
            closer.add_done_callback(_TASKS.discard)
            self._closer = closer
        return closer

    async def _close(self) -> None:
        self._done = True
        self._cancel_timer()
        inflight = self._inflight
        if inflight is not None:
            if not inflight.done():
                if self._error is None:
                    self._error = StoreClosedError("the row stream was closed")
                if self._live is not None:
                    self._live.interrupt()
                await asyncio.wait([inflight])
            if not inflight.cancelled():
                inflight.exception()  # the reader of that chunk (if any) reports it
            self._inflight = None
        live, self._live = self._live, None
        self._first = None
        self._values = None
        try:
            if live is not None:
                await live.finish()
        except Exception:
            log.exception("closing a row stream failed")
        finally:
            self._finished()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finished(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            callback(self)


def open_inline(
    store: Engine, rows: RowStream, conn: Conn, analysis: Analysis, params: Params
) -> bool:
    """Loop thread: the first chunk inline, if SQLite answers within ``inline_budget`` VM steps.

    False when it did not (over budget, or locked): the reader is still ours and clean; run
    the statement on a thread instead.
    """
    pool = store.pool
    guard = conn.guard
    db = conn.db
    live = LiveStatement(store, conn, None)
    budget = ByteBudget(rows.max_bytes) if rows.max_bytes > 0 else None
    guard.start_inline()
    # Never sleep in a busy handler on the event loop: a lock means "use a thread".
    db.set_busy_timeout(0)
    old_limit = length_limit(db, conn.result_bytes)
    try:
        cursor = db.cursor()
        live.cursor = cursor
        execute_bound(cursor, analysis, params)
        columns = result_columns(cursor, analysis)
        first, done = take_rows(cursor, rows.chunk_rows, budget, CHUNK_BYTES)
    except (apsw.InterruptError, apsw.BusyError):
        live.close_cursor()
        pool.inline_overruns += 1
        return False
    except BaseException as exc:
        live.close_cursor()
        live.release()
        if isinstance(exc, apsw.TooBigError) and old_limit >= 0:
            raise too_big(conn.result_bytes, exc) from exc
        if isinstance(exc, apsw.Error):
            raise translate(exc) from exc
        raise
    finally:
        restore_length(db, old_limit)
        guard.stop()
        db.set_busy_timeout(store.settings.busy_timeout_ms)
    pool.inline_runs += 1
    if done:
        # All of it at once (point reads): nothing stays open, no timer to arm.
        live.close_cursor()
        live.release()
        rows._opened(columns, first, True)
        return True
    rows._attach(live)
    if live.budget is not None and budget is not None:
        live.budget.left = budget.left  # what the first chunk spent stays spent
    rows._opened(columns, first, False)
    return True


async def open_on_reader(
    store: Engine, rows: RowStream, analysis: Analysis, params: Params
) -> None:
    """Open a read-only statement on a reader held by ``rows`` until it ends."""
    check_params(analysis, params)
    pool = store.pool
    conn = pool.take_reader()
    if conn is not None and store.inline_reads and open_inline(store, rows, conn, analysis, params):
        return
    if conn is None:
        conn = await pool.acquire_reader()
    live = LiveStatement(store, conn, None)
    rows._attach(live)
    opened = await rows._call(
        live,
        functools.partial(
            open_cursor, live, analysis, params, rows.chunk_rows, time_left(store, live)
        ),
    )
    pool.thread_runs += 1
    rows._opened(*opened)


async def open_autocommit(store: Engine, rows: RowStream, sql: str, params: Params) -> None:
    """``Store.stream``: reads on a reader, anything else through ``Store.execute``."""
    store.check_open()
    analysis = store.cached_analysis(sql) or await store.analysis(sql)
    if analysis.kind == "read" and store.pool.max_readers > 0:
        await open_on_reader(store, rows, analysis, params)
    else:
        rows.set_result(await store.execute(sql, params))


async def open_on_pin(store: Engine, pin: Pin, rows: RowStream, sql: str, params: Params) -> bool:
    """Open ``sql`` on a transaction's pinned connection if it is a read; False if not (the
    caller runs it through the session's execute instead)."""
    live = LiveStatement(store, None, pin)
    cached = store.cached_analysis(sql)
    generation = store.analysis_generation
    pin.streams.add(live)
    rows._attach(live)
    analysis, opened = await rows._call(
        live,
        functools.partial(
            open_pinned, live, sql, cached, params, rows.chunk_rows, time_left(store, live)
        ),
    )
    if cached is None:
        store.remember(analysis, generation)
    if opened is None:
        rows._detach()
        return False
    rows._opened(*opened)
    return True
