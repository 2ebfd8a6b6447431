"""One connection held by a transaction or a session: its time bound, and what it wrote.

A :class:`Pin` runs statements on the held connection (the writer through a ``Hold``, or a
reader for a read-only transaction), rolls back once older than its time bound, and publishes
the commit through the :class:`~edgestore.storage.engine.Engine` when it ends. Row streams
reading on the connection register in ``streams`` and are ended before the transaction is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

import apsw

from ..errors import EdgestoreError, StoreClosedError, TransactionTimeout
from .analysis import Analysis, analyze
from .connection import Conn
from .engine import Engine
from .execution import Outcome, run_statement
from .params import check_params
from .pool import Hold
from .results import Params, Result
from .session_settings import apply_settings, restore_defaults
from .sqlerrors import translate
from .txn_errors import refused as _refused

__all__ = ["Pin", "PinnedStream", "ended_under_stream"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class PinnedStream(Protocol):
    """A row stream reading on a pinned connection (``live_statement.LiveStatement``)."""

    closed: bool
    reason: EdgestoreError | None

    def close_cursor(self) -> None: ...


class Pin:
    """One connection held by one transaction, with its time bound and what it wrote."""

    def __init__(
        self, store: Engine, *, hold: Hold | None, reader: Conn | None, timeout: float
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
        self.streams: set[PinnedStream] = set()
        """Row streams reading on this connection (closed before the transaction ends)."""
        self._abort_task: asyncio.Task[None] | None = None
        self._ending: asyncio.Task[None] | None = None
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
        cached = store.cached_analysis(sql)
        generation = store.analysis_generation
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
                _close_streams(streams, ended_under_stream())
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
            store.remember(analysis, generation)
        self.written |= analysis.deps.writes
        self.schema_change |= analysis.deps.schema_change
        self.settings_changed |= analysis.kind == "setting"
        return result, analysis, still_open

    async def finish(self, *, rollback: bool, committed: bool = False) -> None:
        """End: optionally ROLLBACK, give the connection back, publish a commit.

        The ending runs in a task of its own that the caller's cancellation does not stop
        (a WebSocket that closes cancels the request under way): cancelling the wait for a
        thread job cancels the job itself if it has not started, so a cancelled ROLLBACK
        would never run while the connection was still given back, inside the transaction,
        to the next BEGIN.
        """
        if self.ended:
            return
        ending = self._ending
        if ending is None:
            ending = self.store.loop.create_task(self._finish(rollback, committed))
            self._ending = ending
        await asyncio.shield(ending)

    async def _finish(self, rollback: bool, committed: bool) -> None:
        streams = [s for s in self.streams if not s.closed]
        if streams:
            # Statements of row streams must not outlive the transaction on its connection.
            reason = self.timeout_error() if self.expired else ended_under_stream()
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
            self.store.publish(
                Outcome(
                    written=self.written,
                    schema_change=self.schema_change,
                    committed=True,
                    touches_all=touches_all,
                )
            )


def _close_streams(
    streams: list[PinnedStream], reason: StoreClosedError | TransactionTimeout
) -> None:
    """Pinned connection's thread: end the statements of these row streams."""
    for live in streams:
        if live.reason is None:
            live.reason = reason
        live.close_cursor()


def ended_under_stream() -> StoreClosedError:
    return StoreClosedError("the row stream was closed: its transaction ended")
