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
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import apsw

from ..errors import EdgestoreError, InvalidRequest, StoreClosedError, TransactionTimeout
from .analysis import Analysis, analyze
from .connection import Conn
from .execution import result_columns
from .params import check_params, raise_bind_error
from .results import Column, Params, Result, Value
from .sqlerrors import translate

if TYPE_CHECKING:
    from .store import Store
    from .transaction import _Pin

__all__ = ["DEFAULT_CHUNK_ROWS", "RowStream", "open_autocommit", "open_on_pin", "open_on_reader"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Rows = list[tuple[Value, ...]]
Opener = Callable[["RowStream"], Awaitable[None]]

DEFAULT_CHUNK_ROWS = 256
"""Rows per chunk unless the caller says otherwise."""

_NO_PARAMS: tuple[Value, ...] = ()

# Cleanup started where nobody can await it (a cancelled fetch, expiry): the event loop keeps
# only weak references to tasks.
_TASKS: set[asyncio.Task[None]] = set()


class _Live:
    """A statement part-way through on one connection (a reader of the stream's own, or a
    transaction's pinned connection), and how to reach that connection's thread."""

    __slots__ = ("closed", "conn", "cursor", "pin", "reason", "released", "spent", "store")

    def __init__(self, store: Store, conn: Conn | None, pin: _Pin | None) -> None:
        self.store = store
        self.conn = conn  # the reader; None for a pinned connection (the pin owns it)
        self.pin = pin
        self.cursor: apsw.Cursor | None = None
        self.spent = 0.0
        """Seconds spent inside SQLite so far (statement_timeout is a budget over chunks)."""
        self.closed = False
        self.reason: EdgestoreError | None = None
        """Why the statement was ended from outside (its transaction ended)."""
        self.released = False

    async def run(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` on the connection's thread."""
        pin = self.pin
        if pin is None:
            store = self.store
            assert self.conn is not None
            return await store.loop.run_in_executor(store.pool.reader_executor, fn, self.conn)
        async with pin.lock:
            if self.closed or pin.ended:
                raise self.reason or _transaction_ended(pin)
            return await pin.call(fn)

    def close_cursor(self) -> None:
        """End the statement. On the connection's thread, or on the loop for a reader that
        nothing else uses (resetting a read statement does no I/O and waits for no lock)."""
        cursor, self.cursor = self.cursor, None
        self.closed = True
        if cursor is not None:
            try:
                cursor.close(force=True)
            except apsw.Error:
                log.debug("closing a streamed statement failed", exc_info=True)

    def interrupt(self) -> None:
        """Stop the chunk being read now. Only our own reader: on a pinned connection the
        interrupt could hit the transaction's next statement and roll the transaction back."""
        if self.pin is None and self.conn is not None and not self.closed:
            self.conn.db.interrupt()

    async def finish(self) -> None:
        """End the statement (if still open) and give the connection back. Idempotent."""
        try:
            if not self.closed:
                pin = self.pin
                if pin is None:
                    self.close_cursor()
                else:
                    async with pin.lock:
                        if not self.closed and not pin.ended:
                            await pin.call(lambda conn: self.close_cursor())
                        self.closed = True  # an ended pin closed it already
        finally:
            self.release()

    def release(self) -> None:
        """Loop thread, after the statement ended: the reader back to the pool (a pinned
        connection stays with its transaction)."""
        if self.released:
            return
        self.released = True
        pin = self.pin
        if pin is not None:
            pin.streams.discard(self)
            return
        conn = self.conn
        assert conn is not None
        store = self.store
        try:
            # As after every read: commits seen since (ours or another process's) move the
            # table versions.
            if conn.db.data_version() != conn.last_dv:
                store._data_version_moved(conn)
        except apsw.Error:
            log.debug("checking the data version after a stream failed", exc_info=True)
        store.pool.release_reader(conn)


def _transaction_ended(pin: _Pin) -> EdgestoreError:
    if pin.expired:
        return pin.timeout_error()
    return StoreClosedError("the row stream was closed: its transaction ended")


def _budget(store: Store, live: _Live) -> float:
    """The statement_timeout left for this statement (0: unbounded)."""
    limit = store.settings.statement_timeout
    if not limit:
        return 0.0
    return max(limit - live.spent, 1e-6)


def _read_rows(
    live: _Live,
    conn: Conn,
    timeout: float,
    start: Callable[[], apsw.Cursor],
    n: int,
) -> Rows:
    """Connection thread: up to ``n`` rows, under the statement time budget. Closes the
    statement on any error."""
    guard = conn.guard
    guard.start_thread(timeout)
    began = time.monotonic()
    try:
        return list(itertools.islice(start(), n))
    except BaseException as exc:
        live.close_cursor()
        if isinstance(exc, apsw.Error):
            raise translate(exc, timeout=guard.timed_out) from exc
        raise
    finally:
        guard.stop()
        live.spent += time.monotonic() - began


def _open_cursor(
    live: _Live, analysis: Analysis, params: Params, n: int, timeout: float, conn: Conn
) -> tuple[tuple[Column, ...], Rows, bool]:
    """Connection thread: execute, read the first chunk. Returns (columns, rows, done)."""
    columns: list[tuple[Column, ...]] = []

    def start() -> apsw.Cursor:
        cursor = conn.db.cursor()
        live.cursor = cursor
        _execute(cursor, analysis, params)
        columns.append(result_columns(cursor, analysis))
        return cursor

    rows = _read_rows(live, conn, timeout, start, n)
    done = len(rows) < n
    if done:
        live.close_cursor()
    return columns[0], rows, done


def _execute(cursor: apsw.Cursor, analysis: Analysis, params: Params) -> None:
    try:
        cursor.execute(analysis.sql, _NO_PARAMS if params is None else params)
    except apsw.Error:
        raise
    except Exception as exc:  # binding raises plain Python errors too
        raise_bind_error(analysis, params, exc)


def _fetch(live: _Live, n: int, timeout: float, conn: Conn) -> tuple[Rows, bool]:
    """Connection thread: the next chunk. Returns (rows, done)."""
    cursor = live.cursor
    if cursor is None:
        return [], True
    rows = _read_rows(live, conn, timeout, lambda: cursor, n)
    done = len(rows) < n
    if done:
        live.close_cursor()
    return rows, done


def _open_pinned(
    live: _Live,
    sql: str,
    cached: Analysis | None,
    params: Params,
    n: int,
    timeout: float,
    conn: Conn,
) -> tuple[Analysis, tuple[tuple[Column, ...], Rows, bool] | None]:
    """Pinned connection's thread: analyse there (it knows the transaction's own tables) and
    open the statement if it is a read; (analysis, None) otherwise."""
    analysis = cached if cached is not None else analyze(conn.db, sql)
    if analysis.kind != "read":
        return analysis, None
    check_params(analysis, params)
    return analysis, _open_cursor(live, analysis, params, n, timeout, conn)


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
        "rows_affected",
        "store",
        "streamed",
    )

    def __init__(self, store: Store, opener: Opener, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        if type(chunk_rows) is not int or chunk_rows < 1:
            raise InvalidRequest("chunk_rows must be a positive integer")
        self.store = store
        self.chunk_rows = chunk_rows
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
        self._live: _Live | None = None
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
            fetch = functools.partial(_fetch, live, self.chunk_rows, _budget(self.store, live))
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

    def _set_result(self, result: Result) -> None:
        """Hand out a Result that ``execute`` produced (no connection is held)."""
        self.columns = result.columns
        self.rows_affected = result.rows_affected
        self.last_insert_rowid = result.last_insert_rowid
        self._values = result.values

    def _attach(self, live: _Live) -> None:
        self._live = live
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

    async def _call(self, live: _Live, fn: Callable[[Conn], T]) -> T:
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
    store: Store, rows: RowStream, conn: Conn, analysis: Analysis, params: Params
) -> bool:
    """Loop thread: the first chunk inline, if SQLite answers within ``inline_budget`` VM steps.

    False when it did not (over budget, or locked): the reader is still ours and clean; run
    the statement on a thread instead.
    """
    pool = store.pool
    guard = conn.guard
    db = conn.db
    live = _Live(store, conn, None)
    guard.start_inline()
    # Never sleep in a busy handler on the event loop: a lock means "use a thread".
    db.set_busy_timeout(0)
    try:
        cursor = db.cursor()
        live.cursor = cursor
        _execute(cursor, analysis, params)
        columns = result_columns(cursor, analysis)
        first = list(itertools.islice(cursor, rows.chunk_rows))
    except (apsw.InterruptError, apsw.BusyError):
        live.close_cursor()
        pool.inline_overruns += 1
        return False
    except BaseException as exc:
        live.close_cursor()
        live.release()
        if isinstance(exc, apsw.Error):
            raise translate(exc) from exc
        raise
    finally:
        guard.stop()
        db.set_busy_timeout(store.settings.busy_timeout_ms)
    pool.inline_runs += 1
    if len(first) < rows.chunk_rows:
        # All of it at once (point reads): nothing stays open, no timer to arm.
        live.close_cursor()
        live.release()
        rows._opened(columns, first, True)
        return True
    rows._attach(live)
    rows._opened(columns, first, False)
    return True


async def open_on_reader(store: Store, rows: RowStream, analysis: Analysis, params: Params) -> None:
    """Open a read-only statement on a reader held by ``rows`` until it ends."""
    check_params(analysis, params)
    pool = store.pool
    conn = pool.take_reader()
    if conn is not None and store._inline and open_inline(store, rows, conn, analysis, params):
        return
    if conn is None:
        conn = await pool.acquire_reader()
    live = _Live(store, conn, None)
    rows._attach(live)
    opened = await rows._call(
        live,
        functools.partial(
            _open_cursor, live, analysis, params, rows.chunk_rows, _budget(store, live)
        ),
    )
    pool.thread_runs += 1
    rows._opened(*opened)


async def open_autocommit(store: Store, rows: RowStream, sql: str, params: Params) -> None:
    """``Store.stream``: reads on a reader, anything else through ``Store.execute``."""
    store._check_open()
    analysis = store._cached_analysis(sql) or await store._analysis(sql)
    if analysis.kind == "read" and store.pool.max_readers > 0:
        await open_on_reader(store, rows, analysis, params)
    else:
        rows._set_result(await store.execute(sql, params))


async def open_on_pin(store: Store, pin: _Pin, rows: RowStream, sql: str, params: Params) -> bool:
    """Open ``sql`` on a transaction's pinned connection if it is a read; False if not (the
    caller runs it through the session's execute instead)."""
    live = _Live(store, None, pin)
    cached = store._cached_analysis(sql)
    generation = store._analysis_generation
    pin.streams.add(live)
    rows._attach(live)
    analysis, opened = await rows._call(
        live,
        functools.partial(
            _open_pinned, live, sql, cached, params, rows.chunk_rows, _budget(store, live)
        ),
    )
    if cached is None:
        store._remember(analysis, generation)
    if opened is None:
        rows._detach()
        return False
    rows._opened(*opened)
    return True
