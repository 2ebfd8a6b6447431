"""The Store of a replica node: reads from the local libsql replica, writes on the primary.

``open_replica(settings)`` bootstraps/pulls the replica through ``libsql`` (see
:mod:`.follower`), then opens an ordinary :class:`~edgestore.storage.Store` on the same file
whose connections are read-only in effect (``query_only``), never checkpoint (no automatic
checkpoint, none on close, none on idle) and so never disturb libsql's WAL. The web layer and
the Hrana layer use it exactly like a primary's Store:

* reads run locally; when the replica is further behind than ``max_replication_lag`` they are
  refused (:class:`~edgestore.errors.ReplicaLagging`, 503) unless the request accepts
  staleness, and a request carrying a replication position waits (bounded) until the replica
  has it (:mod:`.read_options`);
* writes, batches, explicit transactions and Hrana transactions run on the primary over Hrana
  (:mod:`.forward`); after each, the replica pulls until it has the position the primary
  returned, so the caller reads its own write here at once;
* every pull that brings frames invalidates the query cache (all tables: a frame names pages,
  not tables).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import apsw

from ..config import Settings
from ..errors import DatabaseError, ReplicationError, StoreClosedError
from ..storage.batch_settings import setting_alone
from ..storage.factory import StorePreparer, start_store
from ..storage.results import Description, Params, Result
from ..storage.store import Store
from .follower import ReplicaFollower
from .position import Position
from .read_options import read_options

if TYPE_CHECKING:
    from .forward import PipelineReply

__all__ = ["ReplicaSession", "ReplicaStore", "ReplicaTransaction", "open_replica"]

_POSITION_WAIT = 5.0  # seconds a read waits for a requested position before 503


async def open_replica(settings: Settings, prepare: StorePreparer | None = None) -> ReplicaStore:
    """Bootstrap (if needed) and open the replica node's store for ``settings.replica_of``.

    ``prepare(store)`` runs before the store starts (``edgestore.open`` attaches its cache).
    """
    follower = ReplicaFollower(settings)
    await follower.open()
    local = settings.replace(schemas_dir=None)
    store = ReplicaStore(local, asyncio.get_running_loop(), follower)
    store.set_replication_role(follower)
    store.add_connection_hook(_configure)
    store.set_idle_close_handler(_no_checkpoint)
    await start_store(store, prepare)
    follower.add_change_listener(store._pulled)
    follower.start()
    return store


def _configure(conn: apsw.Connection, role: Literal["writer", "reader"]) -> None:
    # libsql numbers the local WAL's frames as the primary's: nothing else may write to it
    # or checkpoint it, ever.
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    conn.execute("PRAGMA wal_autocheckpoint=0").fetchall()
    conn.execute("PRAGMA query_only=ON").fetchall()


def _no_checkpoint(conn: apsw.Connection) -> None:
    """Closing on idle must not checkpoint the replica's WAL (libsql owns it)."""


class ReplicaStore(Store):
    """A Store whose reads are local and whose writes go to the primary."""

    def __init__(
        self, settings: Settings, loop: asyncio.AbstractEventLoop, follower: ReplicaFollower
    ) -> None:
        super().__init__(settings, loop)
        self.follower = follower

    # --- freshness ------------------------------------------------------------------------
    async def _gate(self) -> None:
        accept_stale, wanted = read_options()
        if wanted is not None:
            await self.follower.wait_for(wanted, _POSITION_WAIT)
        elif not accept_stale:
            self.follower.check_fresh()

    def _pulled(self, old: Position, new: Position) -> None:
        # A frame names pages, not tables: everything may have changed.
        self.external_change()

    async def _caught_up(self, position: Position | None) -> None:
        """After a write on the primary: pull until this replica has ``position``."""
        if position is None:  # a primary that does not say (Turso): pull once
            await self.follower.sync()
        else:
            await self.follower.wait_for(position, self.settings.pool_timeout)

    async def _kind(self, sql: str) -> str:
        try:
            return (await self.analysis(sql)).kind
        except DatabaseError:
            # Unknown here (a table this replica has not pulled yet, ...): the primary decides.
            return "write"

    async def _forward(self, sql: str, params: Params) -> Result:
        loop = asyncio.get_running_loop()
        result, _baton, position = await loop.run_in_executor(
            None, lambda: self.follower.forwarder.execute(sql, params)
        )
        if isinstance(result, Exception):
            raise result
        await self._caught_up(position)
        return result

    # --- the Store API --------------------------------------------------------------------
    async def query(
        self,
        sql: str,
        params: Params = None,
        *,
        cache: bool | None = None,
        ttl: float | None = None,
        max_rows: int | None = None,
    ) -> Result:
        await self._gate()
        return await super().query(sql, params, cache=cache, ttl=ttl, max_rows=max_rows)

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        if self.closed:
            raise StoreClosedError("the store is closed")
        kind = await self._kind(sql)
        if kind == "read":
            await self._gate()
            return await super().execute(sql, params, max_rows=max_rows)
        if kind == "setting":
            # As on the primary: a statement on its own has no session to keep it.
            return setting_alone(await self.analysis(sql))
        return await self._forward(sql, params)

    async def batch(
        self, stmts: Sequence[tuple[str, Params]], *, max_rows: int | None = None
    ) -> list[Result]:
        self.check_open()
        if not stmts:
            return []
        kinds = [await self._kind(sql) for sql, _ in stmts]
        if all(k == "read" for k in kinds):
            await self._gate()
            return await super().batch(stmts, max_rows=max_rows)
        loop = asyncio.get_running_loop()
        results, position = await loop.run_in_executor(
            None, lambda: self.follower.forwarder.batch_results(stmts)
        )
        await self._caught_up(position)
        return results

    def transaction(self, *, timeout: float | None = None) -> ReplicaTransaction:  # type: ignore[override]
        self.check_open()
        return ReplicaTransaction(self)

    async def session(self) -> ReplicaSession:  # type: ignore[override]
        self.check_open()
        return ReplicaSession(self)

    async def checkpoint(self, mode: str = "TRUNCATE") -> None:
        await self.follower.checkpoint()  # refused: libsql owns this WAL

    async def close(self) -> None:
        if self.closed:
            return
        await super().close()
        await self.follower.close()

    def replication_position(self) -> Position:
        return self.follower.position()


class ReplicaSession:
    """A Hrana stream on a replica: autocommit reads local, everything else on the primary.

    A transaction (BEGIN ...) runs wholly on the primary on one Hrana stream, so its reads see
    its own writes; when the primary reports autocommit again the replica catches up.
    """

    def __init__(self, store: ReplicaStore) -> None:
        self._store = store
        self._baton: str | None = None
        self._in_transaction = False
        self._sticky = False
        """PRAGMA foreign_keys / defer_foreign_keys was set: the setting lives in the
        primary's stream, so the session keeps that stream (and sends everything there)."""
        self._lock = asyncio.Lock()
        self.closed = False

    @property
    def is_autocommit(self) -> bool:
        return not self._in_transaction

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        async with self._lock:
            if self.closed:
                raise StoreClosedError("the session is closed")
            store = self._store
            if self._baton is None:
                kind = await store._kind(sql)
                if kind == "read":
                    return await store.query(sql, params, max_rows=max_rows)
                if kind in ("write", "standalone"):
                    return await store._forward(sql, params)
                self._sticky |= kind == "setting"
            return await self._remote(sql, params)

    async def describe(self, sql: str) -> Description:
        """Describe ``sql``: locally in autocommit; inside a transaction (which runs on the
        primary) on the primary's stream, so tables the transaction created are known."""
        from ..hrana.wire import DescribeResponse, description_of, failure_of

        async with self._lock:
            if self.closed:
                raise StoreClosedError("the session is closed")
            baton = self._baton
            if baton is None:
                return await self._store.describe(sql)
            out = await self._pipeline([{"type": "describe", "sql": sql}], baton)
            self._baton = out.baton
            if not out.raw:
                raise ReplicationError("empty answer from the primary")
            error = failure_of(out.raw[0])
            if error is not None:
                raise error
            response = out.raw[0].response
            if not isinstance(response, DescribeResponse):
                raise ReplicationError("the primary did not answer describe with a description")
            return description_of(response.result)

    async def _remote(self, sql: str, params: Params) -> Result:
        from ..hrana.wire import encode_stmt

        store = self._store
        forwarder = store.follower.forwarder
        reqs: list[dict[str, Any]] = [
            {"type": "execute", "stmt": encode_stmt(sql, params)},
            {"type": "get_autocommit"},
        ]
        out = await self._pipeline(reqs, self._baton)
        loop = asyncio.get_running_loop()
        result = out.results[0] if out.results else ReplicationError("empty answer")
        self._in_transaction = out.autocommit is False and out.baton is not None
        if (self._in_transaction or self._sticky) and out.baton is not None:
            self._baton = out.baton
        else:
            self._baton = None
            if out.baton is not None:
                await loop.run_in_executor(
                    None, lambda: forwarder.pipeline([{"type": "close"}], out.baton)
                )
        if not self._in_transaction and not isinstance(result, Exception):
            await store._caught_up(out.position)
        if isinstance(result, Exception):
            raise result
        return result

    async def _pipeline(
        self, requests: Sequence[Mapping[str, Any]], baton: str | None
    ) -> PipelineReply:
        """Send ``requests`` on this session's Hrana stream (on a worker thread)."""
        forwarder = self._store.follower.forwarder
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, lambda: forwarder.pipeline(requests, baton))
        except Exception:
            self._baton = None  # the stream is gone (connection lost, expired, refused)
            self._in_transaction = False
            raise

    async def close(self) -> None:
        async with self._lock:
            self.closed = True
            baton, self._baton = self._baton, None
            self._in_transaction = False
        if baton is not None:
            forwarder = self._store.follower.forwarder
            loop = asyncio.get_running_loop()
            # Closing the stream rolls its transaction back on the primary.
            with contextlib.suppress(Exception):
                await loop.run_in_executor(
                    None, lambda: forwarder.pipeline([{"type": "close"}], baton)
                )

    async def __aenter__(self) -> ReplicaSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class ReplicaTransaction:
    """``async with store.transaction()`` on a replica: one transaction on the primary."""

    def __init__(self, store: ReplicaStore) -> None:
        self._session = ReplicaSession(store)

    async def __aenter__(self) -> ReplicaTransaction:
        await self._session.execute("BEGIN IMMEDIATE")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and not self._session.is_autocommit:
                await self._session.execute("COMMIT")
        finally:
            await self._session.close()

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        return await self._session._remote(sql, params)

    async def query(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        return await self._session._remote(sql, params)
