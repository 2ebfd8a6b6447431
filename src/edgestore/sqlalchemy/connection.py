"""The DB-API 2 connection and cursor of the shim: thin, stateful views of a shared Store.

A connection holds no SQLite connection while it is not in a database transaction:

- a read outside a transaction runs through :meth:`Store.query` (a reader, inline on the event
  loop when cheap, and the query cache where the store allows it);
- the first write of a transaction (or a SAVEPOINT, or the BEGIN of a ``SERIALIZABLE``
  transaction) opens a :class:`Session` and pins the writer with ``BEGIN IMMEDIATE``; every
  statement until ``commit()``/``rollback()`` then runs on it and sees its own writes;
- in ``AUTOCOMMIT`` mode a write goes through :meth:`Store.execute`, that is the writer's
  group commit, shared with every other connection writing at the same moment.

This is the transaction model of Python's ``sqlite3`` in its legacy mode, which SQLAlchemy's
pysqlite dialect is written for (reads before the first DML see the latest commit), with two
differences: DDL joins the transaction as DML does, and a SAVEPOINT first opens the enclosing
transaction, so ``begin_nested()`` nests instead of committing on RELEASE.

Each call hands a coroutine to ``awaiter``: SQLAlchemy's greenlet ``await_`` for the async
dialect, the sync loop thread for the sync dialect.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..errors import EdgestoreError
from ..storage import Result, Session, Store
from .errors import ProgrammingError, to_dbapi_error

__all__ = ["Awaiter", "Connection", "Cursor"]

T = TypeVar("T")
Awaiter = Callable[[Coroutine[Any, Any, Any]], Any]
Params = Sequence[Any] | Mapping[str, Any] | None

# What a SQL text is, by text: shared by every connection (it depends on the text only).
_kinds: dict[str, str] = {}
_KINDS_MAX = 4096
_FIRST_WORD = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*([A-Za-z]+)(\s+TO\b)?", re.S)
_TXN_WORDS = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}
_EMPTY = Result()
# Statements whose rowcount is -1 (as in sqlite3) when run inside a transaction, where the
# shim does not classify statements before running them.
_READ_WORDS = {"SELECT", "VALUES", "PRAGMA", "EXPLAIN"}


def _pinned_kind(sql: str) -> str:
    match = _FIRST_WORD.match(sql)
    if match is not None and match.group(1).upper() in _READ_WORDS:
        return "read"
    return "pinned"


def _text_kind(sql: str) -> str | None:
    """``BEGIN``/``COMMIT``/``ROLLBACK``/``ROLLBACK TO``/``SAVEPOINT``/``RELEASE``, else None."""
    match = _FIRST_WORD.match(sql)
    if match is None:
        return None
    word = match.group(1).upper()
    if word not in _TXN_WORDS:
        return None
    if word == "END":
        return "COMMIT"
    if word == "ROLLBACK" and match.group(2):
        return "ROLLBACK TO"
    return word


async def _classify(store: Store, sql: str) -> str:
    kind = _kinds.get(sql)
    if kind is not None:
        return kind
    kind = _text_kind(sql)
    if kind is None:
        if (await store.describe(sql)).is_readonly:
            kind = "read"
        else:
            deps = store.deps(sql)
            kind = "write" if deps.writes or deps.schema_change else "standalone"
    if len(_kinds) >= _KINDS_MAX:
        _kinds.clear()
    _kinds[sql] = kind
    return kind


async def _nothing() -> None:
    return None


class Connection:
    """A PEP 249 connection over a shared :class:`Store` (see the module docstring)."""

    def __init__(
        self, store: Store, awaiter: Awaiter, on_close: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self.store = store
        self._await = awaiter
        self._on_close = on_close
        self._session: Session | None = None
        self.autocommit = False
        """True in SQLAlchemy's ``AUTOCOMMIT`` isolation level: every statement commits."""
        self.serializable = False
        """True in ``SERIALIZABLE``: a transaction pins the writer at BEGIN (see do_begin)."""
        self.closed = False

    # -- the pysqlite-compatible switch (None = autocommit), used by SQLAlchemy recipes -----

    @property
    def isolation_level(self) -> str | None:
        return None if self.autocommit else ""

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.autocommit = value is None

    @property
    def in_transaction(self) -> bool:
        """True while this connection holds the writer in a database transaction."""
        return self._session is not None

    # -- PEP 249 -----------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        self._check()
        return Cursor(self)

    def commit(self) -> None:
        self._check()
        if self._session is not None:
            self._run(self._end("COMMIT"))

    def rollback(self) -> None:
        self._check()
        if self._session is not None:
            self._run(self._end(None))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._run(self._close())
        except Exception:
            # Called where the awaiter cannot run (SQLAlchemy's garbage collection of an
            # unreturned async connection has no greenlet): finish on the store's loop.
            loop = self.store.loop
            if loop.is_closed():
                raise
            loop.call_soon_threadsafe(lambda: loop.create_task(self._close()))

    def execute(self, sql: str, parameters: Params = None) -> Cursor:
        """``sqlite3``'s shortcut (recipes written for pysqlite call it in connect events)."""
        return self.cursor().execute(sql, parameters)

    def begin(self) -> None:
        """Pin the writer now (``BEGIN IMMEDIATE``), unless a transaction is already open."""
        self._check()
        if self._session is None and not self.autocommit:
            self._run(self._pin())

    # -- internals ---------------------------------------------------------------------------

    def _check(self) -> None:
        if self.closed:
            raise ProgrammingError("Cannot operate on a closed database.")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            result: T = self._await(coro)
        except EdgestoreError as exc:
            raise to_dbapi_error(exc) from exc
        return result

    async def _close(self) -> None:
        try:
            await self._end(None)
        finally:
            on_close, self._on_close = self._on_close, _nothing
            await on_close()

    async def _pin(self) -> Session:
        session = await self.store.session()
        try:
            await session.execute("BEGIN IMMEDIATE")
        except BaseException:
            await session.close()
            raise
        self._session = session
        return session

    async def _end(self, sql: str | None) -> None:
        session = self._session
        if session is None:
            return
        self._session = None
        try:
            if sql is not None:
                await session.execute(sql)
        finally:
            await session.close()

    async def run_statement(self, sql: str, params: Params) -> tuple[Result, str]:
        """Run one statement where it belongs; returns its result and its kind."""
        session = self._session
        if session is not None:
            kind = _kinds.get(sql) or _text_kind(sql) or _pinned_kind(sql)
            try:
                result = await session.execute(sql, params)
            finally:
                # COMMIT/ROLLBACK/RELEASE in SQL, a statement that ended the transaction
                # (OR ROLLBACK) or its time bound: without a transaction the session would
                # autocommit, so the next write must pin the writer again.
                if session.is_autocommit and self._session is session:
                    self._session = None
                    await session.close()
            return result, kind
        store = self.store
        kind = await _classify(store, sql)
        if kind == "read":
            return await store.query(sql, params), kind
        if kind == "write" and not self.autocommit:
            # The transaction takes the writer now: BEGIN IMMEDIATE and this first write go
            # to the writer thread together.
            session = await self.store.session()
            try:
                result = await session.execute_in_transaction(sql, params)
            except BaseException:
                await session.close()
                raise
            self._session = session
            return result, kind
        if kind in ("write", "standalone"):
            return await store.execute(sql, params), kind
        if kind == "SAVEPOINT" and not self.autocommit:
            session = await self._pin()
            return await session.execute(sql, params), kind
        # BEGIN (or a SAVEPOINT in autocommit mode) opens a transaction by SQL; COMMIT and
        # friends without one fail as SQLite makes them fail.
        session = await store.session()
        try:
            result = await session.execute(sql, params)
        except BaseException:
            await session.close()
            raise
        if session.is_autocommit:
            await session.close()
        else:
            self._session = session
        return result, kind

    async def run_many(self, sql: str, seq: Sequence[Params]) -> tuple[list[Result], str]:
        """Run ``sql`` once per parameter set (atomically in autocommit mode)."""
        if not seq:
            return [], _kinds.get(sql) or "write"
        if self._session is None and self.autocommit:
            kind = await _classify(self.store, sql)
            if kind == "write":
                return await self.store.batch([(sql, p) for p in seq]), kind
        results = []
        kind = "write"
        for params in seq:
            result, kind = await self.run_statement(sql, params)
            results.append(result)
        return results, kind


_descriptions: dict[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = {}


def _description(result: Result) -> tuple[tuple[Any, ...], ...] | None:
    columns = result.columns
    if not columns:
        return None
    found = _descriptions.get(columns)
    if found is None:
        if len(_descriptions) >= _KINDS_MAX:
            _descriptions.clear()
        found = tuple((c.name, None, None, None, None, None, None) for c in columns)
        _descriptions[columns] = found
    return found


class Cursor:
    """A PEP 249 cursor; results are fetched whole, then handed out from memory."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.description: tuple[tuple[Any, ...], ...] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._pos = 0
        self.closed = False

    def _set(self, result: Result, kind: str) -> None:
        self.description = _description(result)
        self._rows = result.values
        self._pos = 0
        self.rowcount = -1 if kind == "read" else result.rows_affected
        if result.last_insert_rowid is not None:
            self.lastrowid = result.last_insert_rowid

    def execute(self, operation: str, parameters: Params = None) -> Cursor:
        conn = self.connection
        if self.closed or conn.closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        if conn._session is None and _kinds.get(operation) == "read":
            # The common case, without a coroutine of ours around the store's.
            self._set(conn._run(conn.store.query(operation, parameters)), "read")
        else:
            result, kind = conn._run(conn.run_statement(operation, parameters))
            self._set(result, kind)
        return self

    def executemany(self, operation: str, seq_of_parameters: Sequence[Params]) -> Cursor:
        conn = self.connection
        if self.closed or conn.closed:
            raise ProgrammingError("Cannot operate on a closed cursor.")
        results, kind = conn._run(conn.run_many(operation, list(seq_of_parameters)))
        self._set(results[-1] if results else _EMPTY, kind)
        self.rowcount = sum(r.rows_affected for r in results) if kind != "read" else -1
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        n = self.arraysize if size is None else size
        rows = self._rows[self._pos : self._pos + n]
        self._pos += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        # A copy: the rows may be the query cache's own list.
        rows = self._rows[self._pos :]
        self._pos = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self.closed = True
        self._rows = []

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's asyncio layer; rows are already in memory, nothing to do."""

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass
