"""The blocking facade: the same async Store, driven on a private event-loop thread.

``edgestore.connect()`` is for scripts and threads without an event loop. Every call hops to
the store's loop thread and waits for the answer, so there is exactly one implementation of
the storage logic; the price is one thread hop per call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..config import Settings
from ..errors import StoreClosedError
from .factory import open
from .pool import PoolStats
from .results import Description, Params, Result, TableDeps
from .store import Store
from .transaction import Session, Transaction

__all__ = ["SyncSession", "SyncStore", "SyncTransaction", "connect"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="edgestore-sync-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a SyncStore cannot be used from its own event loop")
        if self.loop.is_closed():
            coro.close()
            raise StoreClosedError("the store is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncTransaction:
    """Blocking view of a :class:`Transaction`."""

    def __init__(self, tx: Transaction, runner: _LoopThread) -> None:
        self._tx = tx
        self._runner = runner

    def execute(self, sql: str, params: Params = None, *, max_rows: int | None = None) -> Result:
        return self._runner.run(self._tx.execute(sql, params, max_rows=max_rows))

    def query(self, sql: str, params: Params = None, *, max_rows: int | None = None) -> Result:
        return self._runner.run(self._tx.query(sql, params, max_rows=max_rows))


class SyncSession:
    """Blocking view of a :class:`Session`."""

    def __init__(self, session: Session, runner: _LoopThread) -> None:
        self._session = session
        self._runner = runner

    @property
    def is_autocommit(self) -> bool:
        return self._session.is_autocommit

    def execute(self, sql: str, params: Params = None, *, max_rows: int | None = None) -> Result:
        return self._runner.run(self._session.execute(sql, params, max_rows=max_rows))

    def close(self) -> None:
        self._runner.run(self._session.close())

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncStore:
    """A blocking :class:`Store`. Create it with :func:`edgestore.connect`."""

    def __init__(self, store: Store, runner: _LoopThread) -> None:
        self.store = store
        """The underlying async Store (use it only from its own loop)."""
        self._runner = runner
        self.settings: Settings = store.settings
        self.path: Path = store.path

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def query(
        self,
        sql: str,
        params: Params = None,
        *,
        cache: bool | None = None,
        ttl: float | None = None,
        max_rows: int | None = None,
    ) -> Result:
        """See :meth:`Store.query`."""
        return self._run(self.store.query(sql, params, cache=cache, ttl=ttl, max_rows=max_rows))

    def execute(self, sql: str, params: Params = None, *, max_rows: int | None = None) -> Result:
        """See :meth:`Store.execute`."""
        return self._run(self.store.execute(sql, params, max_rows=max_rows))

    def batch(self, stmts: Sequence[tuple[str, Params]]) -> list[Result]:
        """See :meth:`Store.batch`."""
        return self._run(self.store.batch(stmts))

    def describe(self, sql: str) -> Description:
        """See :meth:`Store.describe`."""
        return self._run(self.store.describe(sql))

    def deps(self, sql: str) -> TableDeps:
        """See :meth:`Store.deps`."""
        deps: TableDeps = self._run(_call(self.store.deps, sql))
        return deps

    @contextmanager
    def transaction(self, *, timeout: float | None = None) -> Iterator[SyncTransaction]:
        """``with db.transaction() as tx:`` commits on a clean exit, rolls back on error."""
        tx = self._run(_make_tx(self.store, timeout))
        self._run(tx.__aenter__())
        try:
            yield SyncTransaction(tx, self._runner)
        except BaseException as exc:
            self._run(tx.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        else:
            self._run(tx.__aexit__(None, None, None))

    def session(self) -> SyncSession:
        """See :meth:`Store.session`."""
        return SyncSession(self._run(self.store.session()), self._runner)

    def stats(self) -> PoolStats:
        """The pool's statistics."""
        return self.store.pool.stats()

    def checkpoint(self, mode: str = "TRUNCATE") -> None:
        self._run(self.store.checkpoint(mode))

    def close_idle(self) -> None:
        self._run(self.store.close_idle())

    def invalidate(self, table: str | None = None) -> None:
        self._run(self.store.invalidate(table))

    def apply_schemas(self, directory: str | Path | None = None) -> list[str]:
        return self._run(self.store.apply_schemas(directory))

    def close(self) -> None:
        """Close the store and stop its loop thread. Idempotent."""
        if self._runner.loop.is_closed():
            return
        try:
            self._run(self.store.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> SyncStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _call(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def _make_tx(store: Store, bound: float | None) -> Transaction:
    return store.transaction(timeout=bound)


def connect(
    path: str | Path | None = None, *, settings: Settings | None = None, **overrides: Any
) -> SyncStore:
    """Open a plain store (no cache) for blocking use; same arguments as :func:`open`."""
    return connect_with(open(path, settings=settings, **overrides))


def connect_with(opening: Coroutine[Any, Any, Store]) -> SyncStore:
    """Run ``opening`` (e.g. ``edgestore.open(...)``) on a loop thread of its own."""
    runner = _LoopThread()
    try:
        store = runner.run(opening)
    except BaseException:
        opening.close()
        runner.stop()
        raise
    return SyncStore(store, runner)
