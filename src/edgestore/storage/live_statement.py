"""A statement part-way through on one connection: the cursor behind a :class:`RowStream`.

The functions marked "connection thread" run where the connection lives (a reader's thread,
or a transaction's pinned connection); ``streaming.py`` schedules them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import apsw

from ..errors import EdgestoreError, StoreClosedError
from .analysis import Analysis, analyze
from .bounds import ByteBudget, length_limit, restore_length, take_rows, too_big
from .connection import Conn
from .execution import result_columns
from .params import check_params, raise_bind_error
from .results import Column, Params, Value
from .sqlerrors import translate

if TYPE_CHECKING:
    from .engine import Engine
    from .pin import Pin

__all__ = [
    "CHUNK_BYTES",
    "LiveStatement",
    "Rows",
    "execute_bound",
    "fetch_rows",
    "open_cursor",
    "open_pinned",
    "time_left",
    "transaction_ended",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Rows = list[tuple[Value, ...]]

CHUNK_BYTES = 1024 * 1024
"""A chunk also ends once its rows hold this many bytes: big rows make smaller chunks."""

_NO_PARAMS: tuple[Value, ...] = ()


class LiveStatement:
    """A statement part-way through on one connection (a reader of the stream's own, or a
    transaction's pinned connection), and how to reach that connection's thread."""

    __slots__ = (
        "budget",
        "closed",
        "conn",
        "cursor",
        "pin",
        "reason",
        "released",
        "spent",
        "store",
    )

    def __init__(self, store: Engine, conn: Conn | None, pin: Pin | None) -> None:
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
        self.budget: ByteBudget | None = None
        """Bytes the stream's rows may still take (None: unbounded, a cursor)."""

    async def run(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` on the connection's thread."""
        pin = self.pin
        if pin is None:
            store = self.store
            assert self.conn is not None
            return await store.loop.run_in_executor(store.pool.reader_executor, fn, self.conn)
        async with pin.lock:
            if self.closed or pin.ended:
                raise self.reason or transaction_ended(pin)
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
                store.data_version_moved(conn)
        except apsw.Error:
            log.debug("checking the data version after a stream failed", exc_info=True)
        store.pool.release_reader(conn)


def transaction_ended(pin: Pin) -> EdgestoreError:
    if pin.expired:
        return pin.timeout_error()
    return StoreClosedError("the row stream was closed: its transaction ended")


def time_left(store: Engine, live: LiveStatement) -> float:
    """The statement_timeout left for this statement (0: unbounded)."""
    limit = store.settings.statement_timeout
    if not limit:
        return 0.0
    return max(limit - live.spent, 1e-6)


def read_rows(
    live: LiveStatement,
    conn: Conn,
    timeout: float,
    start: Callable[[], apsw.Cursor],
    n: int,
) -> tuple[Rows, bool]:
    """Connection thread: up to ``n`` rows (fewer when they pass CHUNK_BYTES), under the
    statement time budget and the stream's byte budget. Returns (rows, exhausted). Closes
    the statement on any error."""
    guard = conn.guard
    guard.start_thread(timeout)
    began = time.monotonic()
    old_limit = length_limit(conn.db, conn.result_bytes)
    try:
        return take_rows(start(), n, live.budget, CHUNK_BYTES)
    except BaseException as exc:
        live.close_cursor()
        if isinstance(exc, apsw.TooBigError) and old_limit >= 0:
            raise too_big(conn.result_bytes, exc) from exc
        if isinstance(exc, apsw.Error):
            raise translate(exc, timeout=guard.timed_out) from exc
        raise
    finally:
        restore_length(conn.db, old_limit)
        guard.stop()
        live.spent += time.monotonic() - began


def open_cursor(
    live: LiveStatement, analysis: Analysis, params: Params, n: int, timeout: float, conn: Conn
) -> tuple[tuple[Column, ...], Rows, bool]:
    """Connection thread: execute, read the first chunk. Returns (columns, rows, done)."""
    columns: list[tuple[Column, ...]] = []

    def start() -> apsw.Cursor:
        cursor = conn.db.cursor()
        live.cursor = cursor
        execute_bound(cursor, analysis, params)
        columns.append(result_columns(cursor, analysis))
        return cursor

    rows, done = read_rows(live, conn, timeout, start, n)
    if done:
        live.close_cursor()
    return columns[0], rows, done


def execute_bound(cursor: apsw.Cursor, analysis: Analysis, params: Params) -> None:
    try:
        cursor.execute(analysis.sql, _NO_PARAMS if params is None else params)
    except apsw.Error:
        raise
    except Exception as exc:  # binding raises plain Python errors too
        raise_bind_error(analysis, params, exc)


def fetch_rows(live: LiveStatement, n: int, timeout: float, conn: Conn) -> tuple[Rows, bool]:
    """Connection thread: the next chunk. Returns (rows, done)."""
    cursor = live.cursor
    if cursor is None:
        return [], True
    rows, done = read_rows(live, conn, timeout, lambda: cursor, n)
    if done:
        live.close_cursor()
    return rows, done


def open_pinned(
    live: LiveStatement,
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
    return analysis, open_cursor(live, analysis, params, n, timeout, conn)
