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
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import apsw

from ..errors import (
    DatabaseError,
    InvalidRequest,
    StoreClosedError,
)
from .analysis import analyze, description_of
from .connection import Conn
from .pin import Pin
from .results import Description, Params, Result
from .session_settings import SessionSettings
from .sqlerrors import translate
from .streaming import DEFAULT_CHUNK_ROWS, RowStream, open_on_pin, open_on_reader
from .txn_errors import no_transaction as _no_transaction
from .txn_errors import readonly_begin as _readonly_begin

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Session", "Transaction"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Transaction:
    """One writer transaction; use as ``async with store.transaction() as tx``."""

    def __init__(self, store: Engine, timeout: float) -> None:
        self._store = store
        self._timeout = timeout
        self._pin: Pin | None = None

    async def __aenter__(self) -> Transaction:
        store = self._store
        hold = await store.pool.hold()
        pin = Pin(store, hold=hold, reader=None, timeout=self._timeout)
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

    def _live(self) -> Pin:
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

    def __init__(self, store: Engine) -> None:
        self._store = store
        self._pin: Pin | None = None
        self._lock = asyncio.Lock()
        self._streams: set[RowStream] = set()
        self._settings = SessionSettings()
        self.closed = False

    @property
    def is_autocommit(self) -> bool:
        """True when no transaction is open."""
        return self._pin is None or self._pin.ended

    def _current_pin(self) -> Pin | None:
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
            analysis = await store.analysis(sql)
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
        self,
        sql: str,
        params: Params = None,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_bytes: int = 0,
    ) -> RowStream:
        """The rows of one statement in chunks, read as SQLite produces them.

        In autocommit a read holds a reader until the stream is exhausted or closed; inside a
        transaction a read runs on the pinned connection and sees the transaction's own
        writes (COMMIT/ROLLBACK close it first). Any other statement runs as :meth:`execute`
        runs it and its result is handed out in chunks. Nothing runs before
        ``RowStream.start()`` or the first ``async for`` step; ``max_bytes`` as in
        ``Store.stream``; see ``storage.streaming``.
        """
        return RowStream(
            self._store, lambda rows: self._open_stream(rows, sql, params), chunk_rows, max_bytes
        )

    async def _open_stream(self, rows: RowStream, sql: str, params: Params) -> None:
        async with self._lock:
            store = self._store
            pin = self._current_pin()
            if pin is None:
                analysis = store.cached_analysis(sql) or await store.analysis(sql)
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
            rows.set_result(await self._execute(sql, params, None))

    def _track(self, rows: RowStream) -> None:
        # Open streams close with the session (a reader must not outlive it).
        if rows._live is not None:
            self._streams.add(rows)
            rows.on_close(self._streams.discard)

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

    async def _pin_connection(self, readonly: bool) -> Pin:
        store = self._store
        timeout = store.settings.transaction_timeout
        if readonly and store.pool.max_readers > 0:
            reader = await store.pool.acquire_reader()
            return Pin(store, hold=None, reader=reader, timeout=timeout)
        hold = await store.pool.hold()
        return Pin(store, hold=hold, reader=None, timeout=timeout)

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


def _transaction_gone(pin: Pin) -> Exception:
    if pin.expired:
        return pin.timeout_error()
    return StoreClosedError("the transaction has ended")
