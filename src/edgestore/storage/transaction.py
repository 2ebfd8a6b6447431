"""Explicit transactions and stateful sessions: both pin one connection until they end.

A :class:`Transaction` (``async with store.transaction()``) holds the writer from BEGIN
IMMEDIATE to COMMIT/ROLLBACK. A :class:`Session` follows the SQL it is given: in autocommit it
holds nothing and behaves like the store; BEGIN (or a first SAVEPOINT) pins the writer, or a
reader for ``BEGIN TRANSACTION READONLY``, until the transaction ends. Either is rolled back
once older than its time bound; the next call then raises TransactionTimeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import apsw

from ..errors import (
    DatabaseError,
    InvalidRequest,
    StoreClosedError,
    TransactionTimeout,
)
from .analysis import Analysis, analyze, description_of
from .connection import Conn
from .execution import Outcome, run_statement
from .params import check_params
from .pool import Hold
from .results import Description, Params, Result
from .session_settings import SessionSettings, apply_settings, restore_defaults
from .sqlerrors import translate
from .streaming import DEFAULT_CHUNK_ROWS, RowStream, open_on_pin, open_on_reader
from .txn_errors import no_transaction as _no_transaction
from .txn_errors import readonly_begin as _readonly_begin
from .txn_errors import refused as _refused

if TYPE_CHECKING:
    from .store import Store
    from .streaming import _Live

__all__ = ["Session", "Transaction"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Pin:
    """One connection held by one transaction, with its time bound and what it wrote."""

    def __init__(
        self, store: Store, *, hold: Hold | None, reader: Conn | None, timeout: float
    ) -> None:
        self.store = store
        self.hold = hold
        self.reader = reader
        self.timeout = timeout
        self.lock = asyncio.Lock()
        self.written: set[str] = set()
        self.schema_change = False
        self.expired = False
        self.ended = False
        self.running = False
        self.settings_changed = False  # a session PRAGMA was set: restore defaults on release
        self.streams: set[_Live] = set()
        """Row streams reading on this connection (closed before the transaction ends)."""
        self._abort_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = store.loop.call_later(timeout, self._expire)

    async def call(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn`` on the pinned connection's thread."""
        self.running = True
        try:
            if self.hold is not None:
                return await self.hold.run(fn)
            assert self.reader is not None
            pool = self.store.pool
            return await self.store.loop.run_in_executor(pool.reader_executor, fn, self.reader)
        finally:
            self.running = False

    async def apply(self, settings: dict[str, bool]) -> None:
        """Set a session's PRAGMAs on the pinned connection before its statement runs."""
        if settings:
            self.settings_changed = True
            await self.call(lambda conn: apply_settings(conn.db, settings))

    def _expire(self) -> None:
        self._timer = None
        if self.ended:
            return
        self.expired = True
        if self.running:
            # Stop the statement in flight; the abort below then rolls back.
            if self.hold is not None:
                self.hold.interrupt()
            elif self.reader is not None:
                self.reader.db.interrupt()
        self._abort_task = self.store.loop.create_task(self._abort())

    async def _abort(self) -> None:
        async with self.lock:
            if not self.ended:
                await self.finish(rollback=True)

    def timeout_error(self) -> TransactionTimeout:
        return TransactionTimeout(
            f"the transaction was open longer than {self.timeout:g}s and was rolled back"
        )

    def check(self) -> None:
        if self.ended:
            if self.expired:
                raise self.timeout_error()
            raise StoreClosedError("the transaction has ended")

    async def run_sql(
        self,
        sql: str,
        params: Params,
        max_rows: int | None,
        allowed: tuple[str, ...],
        *,
        begin: str | None = None,
    ) -> tuple[Result, Analysis, bool]:
        """Analyse and run ``sql`` on the pinned connection (after ``begin``, in the same call).

        Returns the result, the analysis and whether a transaction is still open.
        """
        store = self.store
        cached = store._cached_analysis(sql)
        generation = store._analysis_generation
        timeout = store.settings.statement_timeout
        state: dict[str, bool] = {}
        streams = [s for s in self.streams if not s.closed]

        def work(conn: Conn) -> tuple[Result, Analysis, bool]:
            # Analysed on this connection: it sees the transaction's own schema changes.
            analysis = cached if cached is not None else analyze(conn.db, sql)
            state["analysed"] = cached is None
            if analysis.kind not in allowed:
                raise _refused(analysis, allowed)
            check_params(analysis, params)
            if streams and analysis.kind in ("begin", "end", "savepoint"):
                # The transaction (or part of it) ends under open row streams: end those
                # statements first, so none outlives the transaction on this connection.
                _close_streams(streams, _ended_under_stream())
            conn.guard.start_thread(timeout)
            try:
                if begin is not None:
                    conn.db.execute(begin)
                result = run_statement(conn, analysis, params, max_rows)
            except apsw.Error as exc:
                state["open"] = conn.db.in_transaction
                raise translate(exc, timeout=conn.guard.timed_out) from exc
            finally:
                conn.guard.stop()
            return result, analysis, conn.db.in_transaction

        try:
            result, analysis, still_open = await self.call(work)
        except Exception as exc:
            if self.expired:
                raise self.timeout_error() from exc
            if not state.get("open", True):
                # The failed statement ended the transaction (OR ROLLBACK, RAISE(ROLLBACK)).
                await self.finish(rollback=False, committed=False)
            raise
        if state.get("analysed"):
            store._remember(analysis, generation)
        self.written |= analysis.deps.writes
        self.schema_change |= analysis.deps.schema_change
        self.settings_changed |= analysis.kind == "setting"
        return result, analysis, still_open

    async def finish(self, *, rollback: bool, committed: bool = False) -> None:
        """End: optionally ROLLBACK, give the connection back, publish a commit."""
        if self.ended:
            return
        streams = [s for s in self.streams if not s.closed]
        if streams:
            # Statements of row streams must not outlive the transaction on its connection.
            reason = self.timeout_error() if self.expired else _ended_under_stream()
            try:
                await self.call(lambda conn: _close_streams(streams, reason))
            except Exception:
                log.exception("closing row streams at the end of a transaction failed")
        try:
            if rollback or self.settings_changed:
                restore = self.settings_changed

                def undo(conn: Conn) -> None:
                    try:
                        if rollback and conn.db.in_transaction:
                            conn.db.execute("ROLLBACK")
                    finally:
                        if restore:
                            # Nobody else may find this session's foreign_keys on it.
                            restore_defaults(conn.db)

                await self.call(undo)
        finally:
            self.ended = True
            self.streams.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.hold is not None:
                self.hold.release()
            elif self.reader is not None:
                self.store.pool.release_reader(self.reader)
        writer = self.store.pool.writer if self.hold is not None else None
        touches_all = writer is not None and writer.temp_triggers
        if committed and (self.written or self.schema_change or touches_all):
            self.store._publish(
                Outcome(
                    written=self.written,
                    schema_change=self.schema_change,
                    committed=True,
                    touches_all=touches_all,
                )
            )


def _close_streams(streams: list[_Live], reason: StoreClosedError | TransactionTimeout) -> None:
    """Pinned connection's thread: end the statements of these row streams."""
    for live in streams:
        if live.reason is None:
            live.reason = reason
        live.close_cursor()


def _ended_under_stream() -> StoreClosedError:
    return StoreClosedError("the row stream was closed: its transaction ended")


class Transaction:
    """One writer transaction; use as ``async with store.transaction() as tx``."""

    def __init__(self, store: Store, timeout: float) -> None:
        self._store = store
        self._timeout = timeout
        self._pin: _Pin | None = None

    async def __aenter__(self) -> Transaction:
        store = self._store
        hold = await store.pool.hold()
        pin = _Pin(store, hold=hold, reader=None, timeout=self._timeout)
        try:
            await pin.call(_begin_immediate)
        except BaseException:
            await pin.finish(rollback=False)
            raise
        self._pin = pin
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pin = self._pin
        if pin is None:
            return
        async with pin.lock:
            if pin.ended:
                if exc_type is None and pin.expired:
                    raise pin.timeout_error()
                return
            if exc_type is not None:
                await pin.finish(rollback=True)
                return
            try:
                await pin.call(_commit)
            except BaseException:
                await pin.finish(rollback=True)
                raise
            await pin.finish(rollback=False, committed=True)

    def _live(self) -> _Pin:
        if self._pin is None:
            raise InvalidRequest("use the transaction inside 'async with'")
        self._pin.check()
        return self._pin

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        """Run one statement inside the transaction."""
        pin = self._live()
        async with pin.lock:
            pin.check()
            result, _, still_open = await pin.run_sql(
                sql, params, max_rows, ("read", "write", "standalone", "savepoint", "setting")
            )
            if not still_open:
                await pin.finish(rollback=False)
                raise DatabaseError(
                    "the statement ended the transaction; nothing was committed",
                    code="SQLITE_ABORT",
                )
            return result

    async def query(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        """Run a read-only statement inside the transaction (it sees uncommitted writes)."""
        pin = self._live()
        async with pin.lock:
            pin.check()
            result, _, _ = await pin.run_sql(sql, params, max_rows, ("read",))
            return result


def _execute_translated(conn: Conn, sql: str) -> None:
    try:
        conn.db.execute(sql)
    except apsw.Error as exc:
        raise translate(exc) from exc


def _begin_immediate(conn: Conn) -> None:
    _execute_translated(conn, "BEGIN IMMEDIATE")


def _commit(conn: Conn) -> None:
    _execute_translated(conn, "COMMIT")


class Session:
    """A stateful SQL session (one Hrana stream). Holds no connection in autocommit."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pin: _Pin | None = None
        self._lock = asyncio.Lock()
        self._streams: set[RowStream] = set()
        self._settings = SessionSettings()
        self.closed = False

    @property
    def is_autocommit(self) -> bool:
        """True when no transaction is open."""
        return self._pin is None or self._pin.ended

    def _current_pin(self) -> _Pin | None:
        """The open transaction's pin; raises TransactionTimeout once if it expired."""
        if self.closed:
            raise StoreClosedError("the session is closed")
        pin = self._pin
        if pin is not None and pin.ended:
            self._pin = None
            if pin.expired:
                raise pin.timeout_error()
        return self._pin

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        """Run one statement; BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE work as in SQLite."""
        async with self._lock:
            return await self._execute(sql, params, max_rows)

    async def _execute(self, sql: str, params: Params, max_rows: int | None) -> Result:
        store = self._store
        if self._current_pin() is None:
            analysis = await store._analysis(sql)
            settings = self._settings
            if analysis.kind == "setting":
                return settings.set(analysis)
            if (answer := settings.read(analysis)) is not None:
                return answer
            starts = analysis.kind == "begin" or (
                analysis.kind == "savepoint" and analysis.txn_op == "BEGIN"
            )
            if not starts:
                if analysis.kind in ("end", "savepoint"):
                    raise _no_transaction(analysis)
                if settings and analysis.kind in ("write", "standalone"):
                    return await self._execute_alone(sql, params, max_rows)
                settings.statement_ran()
                return await store.execute(sql, params, max_rows=max_rows)
            pinned = await self._pin_connection(analysis.kind == "begin" and _readonly_begin(sql))
            try:
                await pinned.apply(settings.taken())
            except BaseException:
                await pinned.finish(rollback=True)
                raise
            self._pin = pinned
        pin = self._pin
        assert pin is not None
        async with pin.lock:
            if pin.ended:
                self._pin = None
                raise _transaction_gone(pin)
            result, analysis, still_open = await pin.run_sql(
                sql,
                params,
                max_rows,
                ("read", "write", "standalone", "begin", "end", "savepoint", "setting"),
            )
            if not still_open:
                committed = analysis.txn_op in ("COMMIT", "RELEASE")
                await pin.finish(rollback=False, committed=committed)
                self._pin = None
        return result

    async def _execute_alone(self, sql: str, params: Params, max_rows: int | None) -> Result:
        # A write under this session's foreign_keys: on the writer held for it alone (group
        # commit shares one transaction, and foreign_keys cannot change inside one).
        pin = await self._pin_connection(False)
        committed = False
        try:
            await pin.apply(self._settings.taken())
            async with pin.lock:
                result, _, _ = await pin.run_sql(sql, params, max_rows, ("write", "standalone"))
            committed = True
            return result
        finally:
            await pin.finish(rollback=True, committed=committed)

    async def execute_in_transaction(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        """Run ``sql`` inside a write transaction, opening one first if none is open.

        The opening ``BEGIN IMMEDIATE`` runs in the same call to the writer as ``sql``: a
        transaction that takes the writer at its first write pays one thread hop for both
        (the SQLAlchemy dialects use this). Inside an open transaction it is :meth:`execute`.
        """
        async with self._lock:
            if self._current_pin() is not None:
                return await self._execute(sql, params, max_rows)
            pin = await self._pin_connection(False)
            try:
                await pin.apply(self._settings.taken())
            except BaseException:
                await pin.finish(rollback=True)
                raise
            self._pin = pin
            async with pin.lock:
                try:
                    result, _, _ = await pin.run_sql(
                        sql, params, max_rows, ("read", "write"), begin="BEGIN IMMEDIATE"
                    )
                except BaseException:
                    if not pin.ended:
                        await pin.finish(rollback=True)
                    self._pin = None
                    raise
            return result

    def stream(
        self, sql: str, params: Params = None, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> RowStream:
        """The rows of one statement in chunks, read as SQLite produces them.

        In autocommit a read holds a reader until the stream is exhausted or closed; inside a
        transaction a read runs on the pinned connection and sees the transaction's own
        writes (COMMIT/ROLLBACK close it first). Any other statement runs as :meth:`execute`
        runs it and its result is handed out in chunks. Nothing runs before
        ``RowStream.start()`` or the first ``async for`` step; see ``storage.streaming``.
        """
        return RowStream(self._store, lambda rows: self._open_stream(rows, sql, params), chunk_rows)

    async def _open_stream(self, rows: RowStream, sql: str, params: Params) -> None:
        async with self._lock:
            store = self._store
            pin = self._current_pin()
            if pin is None:
                analysis = store._cached_analysis(sql) or await store._analysis(sql)
                if (
                    analysis.kind == "read"
                    and store.pool.max_readers > 0
                    and analysis.setting is None
                ):
                    self._settings.statement_ran()
                    await open_on_reader(store, rows, analysis, params)
                    self._track(rows)
                    return
            else:
                async with pin.lock:
                    if pin.ended:
                        self._pin = None
                        raise _transaction_gone(pin)
                if await open_on_pin(store, pin, rows, sql, params):
                    self._track(rows)
                    return
            rows._set_result(await self._execute(sql, params, None))

    def _track(self, rows: RowStream) -> None:
        # Open streams close with the session (a reader must not outlive it).
        if rows._live is not None:
            self._streams.add(rows)
            rows._on_close.append(self._streams.discard)

    async def describe(self, sql: str) -> Description:
        """Describe ``sql`` as this session sees it: inside an open transaction, on the
        pinned connection, so tables the transaction created are known."""
        async with self._lock:
            if self.closed:
                raise StoreClosedError("the session is closed")
            pin = self._pin
            if pin is None or pin.ended:
                return await self._store.describe(sql)
            async with pin.lock:
                pin.check()
                # analyze() already turns apsw errors into edgestore ones.
                analysis = await pin.call(lambda conn: analyze(conn.db, sql))
            return description_of(analysis)

    async def _pin_connection(self, readonly: bool) -> _Pin:
        store = self._store
        timeout = store.settings.transaction_timeout
        if readonly and store.pool.max_readers > 0:
            reader = await store.pool.acquire_reader()
            return _Pin(store, hold=None, reader=reader, timeout=timeout)
        hold = await store.pool.hold()
        return _Pin(store, hold=hold, reader=None, timeout=timeout)

    async def close(self) -> None:
        """Close open row streams, roll back any open transaction, release its connection."""
        async with self._lock:
            self.closed = True
            streams = list(self._streams)
            self._streams.clear()
            for rows in streams:
                await rows.abort(StoreClosedError("the row stream was closed: its session closed"))
            pin = self._pin
            self._pin = None
            if pin is not None:
                async with pin.lock:
                    await pin.finish(rollback=True)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _transaction_gone(pin: _Pin) -> Exception:
    if pin.expired:
        return pin.timeout_error()
    return StoreClosedError("the transaction has ended")
