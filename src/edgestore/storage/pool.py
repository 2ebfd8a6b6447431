"""The connection pool: one writer, up to ``max_readers`` read-only readers, nothing more.

Scheduling happens on the event loop; SQLite work happens on the pool's threads (one writer
thread, one thread per reader), or inline on the loop for reads that fit a small VM-step
budget (see ``Store``). Connections open lazily and close after ``idle_timeout`` seconds
unused; before the last one closes, the writer checkpoints the WAL into the database file.

Writes go through a FIFO queue served by the writer:

* write requests queued back to back are group-committed (see ``execution.run_group``);
* a *hold* gives one caller the writer exclusively (explicit transactions, run_on_writer,
  schema apply, idle close), waiting at most ``pool_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import apsw

from ..config import Settings
from ..errors import PoolTimeout, StoreClosedError
from .connection import Conn, open_connection
from .dark import fingerprint, release_memory
from .execution import Outcome, WriteJob, pragma_data_version, run_alone, run_group
from .hold import Hold
from .pool_stats import PoolStats
from .sqlerrors import translate
from .write_queue import HoldRequest, WriteQueue, WriteRequest

__all__ = ["ConnectionHook", "Hold", "Pool", "PoolStats"]

log = logging.getLogger(__name__)

T = TypeVar("T")
ConnectionHook = Callable[[apsw.Connection, Literal["writer", "reader"]], None]
IdleCloseHandler = Callable[[apsw.Connection], None]


class Pool:
    """The pool. Methods are called on the event loop thread unless they say otherwise."""

    def __init__(self, path: Path, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.settings = settings
        self.loop = loop
        self.max_readers = settings.max_readers
        self.writer: Conn | None = None
        self.writer_executor = ThreadPoolExecutor(1, thread_name_prefix="edgestore-writer")
        self.reader_executor = ThreadPoolExecutor(
            max(1, self.max_readers), thread_name_prefix="edgestore-reader"
        )
        self._idle: list[Conn] = []
        self._readers_open = 0
        self._reader_waiters: deque[asyncio.Future[Conn]] = deque()
        self._readers_drained: asyncio.Future[None] | None = None
        self._queue = WriteQueue(loop, settings, self._count_timeout)
        self._writer_busy = False
        self._writer_last_used = time.monotonic()
        self._hooks: list[ConnectionHook] = []
        self.idle_close_handler: IdleCloseHandler | None = None
        self.on_commit: Callable[[Outcome], None] = lambda outcome: None
        self.on_external: Callable[[], None] = lambda: None
        # Files' fingerprint when the last connection closed: while no connection is open,
        # nothing of ours watches the data version, so a change is found by comparing this.
        self._dark_fingerprint: tuple[object, ...] | None = None
        self.closing = False
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._kick_soon = False
        self._tasks: set[asyncio.Task[None]] = set()
        # Bumped on the writer thread around every writer job: a reader that sees the data
        # version move while this moved too cannot tell our commit from another process's.
        self.writer_seq = 0
        # counters (PoolStats says what each counts)
        self.waits = self.timeouts = self.opens = self.closes = self.idle_closes = 0
        self.inline_runs = self.inline_overruns = self.thread_runs = 0
        self.group_commits = self.grouped_writes = self.peak = 0

    # -- stats -------------------------------------------------------------------------

    @property
    def connections_open(self) -> int:
        return self._readers_open + (1 if self.writer is not None else 0)

    def stats(self) -> PoolStats:
        """Current state and counters."""
        return PoolStats(
            writer_open=self.writer is not None,
            readers_open=self._readers_open,
            readers_busy=self._readers_open - len(self._idle),
            connections_open=self.connections_open,
            max_connections=1 + self.max_readers,
            peak_connections=self.peak,
            waits=self.waits,
            timeouts=self.timeouts,
            opens=self.opens,
            closes=self.closes,
            idle_closes=self.idle_closes,
            inline_runs=self.inline_runs,
            inline_overruns=self.inline_overruns,
            thread_runs=self.thread_runs,
            group_commits=self.group_commits,
            grouped_writes=self.grouped_writes,
            writes_pending=self._queue.pending_writes(),
            writer_busy=self._writer_busy,
        )

    def _opened(self) -> None:
        self.opens += 1
        self.peak = max(self.peak, self.connections_open)

    # -- hooks ---------------------------------------------------------------------------

    def add_hook(self, hook: ConnectionHook) -> None:
        """Register a connection hook; connections already open get it before their next use."""
        self._hooks.append(hook)
        for conn in self._idle:
            self._apply_hooks(conn)

    def _apply_hooks(self, conn: Conn) -> None:
        while conn.hooks_applied < len(self._hooks):
            hook = self._hooks[conn.hooks_applied]
            conn.hooks_applied += 1
            try:
                hook(conn.db, conn.role)
            except Exception:
                log.exception("connection hook %r failed", hook)

    # -- readers -------------------------------------------------------------------------

    def take_reader(self) -> Conn | None:
        """An idle reader (opening one if there is room), or None. Never waits."""
        if self._idle:
            conn = self._idle.pop()
        elif self._readers_open < self.max_readers and not self.closing:
            conn = self._open_reader()
        else:
            return None
        if conn.hooks_applied < len(self._hooks):
            self._apply_hooks(conn)
        return conn

    def check_dark(self) -> bool:
        """While no connection is open: did the files change since the last one closed?

        Returns True (and reports an external change) if they did. Cheap: two stat calls.
        """
        before = self._dark_fingerprint
        if before is None:
            return False
        now = fingerprint(self.path)
        if now == before:
            return False
        self._dark_fingerprint = now
        if self._on_loop():
            self.on_external()
        else:
            self.loop.call_soon_threadsafe(self.on_external)
        return True

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _waking(self) -> None:
        # The first connection opens after a dark period: compare, then stop comparing.
        if self.connections_open == 0 and self._dark_fingerprint is not None:
            self.check_dark()
            self._dark_fingerprint = None

    def _went_dark(self) -> None:
        if self.connections_open == 0:
            self._dark_fingerprint = fingerprint(self.path)
            if not self.closing:
                # The page caches just freed sit in malloc arenas (several threads' worth);
                # hand them back to the OS so an idle process is small (bench: ~3 MiB).
                self.writer_executor.submit(release_memory)

    def inspectable_connections(self) -> list[Conn]:
        """The writer (when open) and the idle readers: those whose memory may be read now."""
        return [c for c in (self.writer, *self._idle) if c is not None]

    def idle_reader(self) -> Conn | None:
        """An already open idle reader, or None (never opens, never waits)."""
        return self._idle.pop() if self._idle else None

    def _open_reader(self) -> Conn:
        # Opening a read-only connection touches no lock and does no I/O beyond open(2); it
        # is cheap enough for the loop thread.
        self._waking()
        self._readers_open += 1
        try:
            conn = open_connection(self.path, self.settings, "reader")
        except BaseException:
            self._readers_open -= 1
            raise
        self._opened()
        return conn

    async def acquire_reader(self) -> Conn:
        """A reader for this caller alone, waiting at most ``pool_timeout``."""
        if self.closing:
            raise StoreClosedError("the store is closed")
        conn = self.take_reader()
        if conn is not None:
            return conn
        future: asyncio.Future[Conn] = self.loop.create_future()
        self._reader_waiters.append(future)
        self.waits += 1
        conn = await self._granted(future, "no reader became free", self.release_reader)
        if conn.hooks_applied < len(self._hooks):
            self._apply_hooks(conn)
        return conn

    def release_reader(self, conn: Conn) -> None:
        """Give a reader back: to the next waiter, or to the idle list."""
        conn.last_used = time.monotonic()
        if self.closing:
            self._close_reader(conn, idle=False)
            return
        while self._reader_waiters:
            waiter = self._reader_waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)
        self._schedule_sweep()

    def _close_reader(self, conn: Conn, *, idle: bool) -> None:
        self._readers_open -= 1
        self.closes += 1
        if idle:
            self.idle_closes += 1
        try:
            conn.close()
        except apsw.Error:
            log.exception("closing a reader failed")
        drained = self._readers_drained
        if self._readers_open == 0 and drained is not None and not drained.done():
            drained.set_result(None)
        self._went_dark()

    # -- writer ----------------------------------------------------------------------------

    def with_writer(self, fn: Callable[[Conn], T]) -> T:
        """Writer thread: run ``fn`` on the writer, opening it first if it is closed."""
        conn = self.writer
        if conn is None:
            self._waking()
            conn = open_connection(self.path, self.settings, "writer")
            conn.last_dv = pragma_data_version(conn.db)
            self.writer = conn
            self.loop.call_soon_threadsafe(self._opened)
        if conn.hooks_applied < len(self._hooks):
            self._apply_hooks(conn)
        self.writer_seq += 1
        try:
            return fn(conn)
        finally:
            self.writer_seq += 1

    def submit(self, job: WriteJob, *, alone: bool = False) -> asyncio.Future[WriteJob]:
        """Queue a write; the future resolves after the COMMIT that holds it returned."""
        if self.closing:
            raise StoreClosedError("the store is closed")
        future: asyncio.Future[WriteJob] = self.loop.create_future()
        self._queue.add_write(WriteRequest(job, future, alone))
        if not self._kick_soon:
            # Start on the next loop turn, not now: writes submitted by tasks that run in
            # this same turn (a gather, a burst of requests) then share the first commit.
            self._kick_soon = True
            self.loop.call_soon(self._deferred_kick)
        return future

    def _deferred_kick(self) -> None:
        self._kick_soon = False
        self._kick()

    def _count_timeout(self) -> None:
        self.timeouts += 1

    async def hold(self) -> Hold:
        """Exclusive use of the writer, waiting at most ``pool_timeout`` (then PoolTimeout)."""
        if self.closing:
            raise StoreClosedError("the store is closed")
        return await self._hold()

    async def _hold(self) -> Hold:
        future: asyncio.Future[Hold] = self.loop.create_future()
        self._queue.add_hold(HoldRequest(future))
        if self._writer_busy:
            self.waits += 1
        self._kick()
        return await self._granted(
            future, "the writer did not become free", lambda hold: hold.release()
        )

    async def _granted(
        self, future: asyncio.Future[T], waited_for: str, give_back: Callable[[T], None]
    ) -> T:
        """Wait at most ``pool_timeout`` for ``future``; a grant that races with the caller's
        cancellation is handed back with ``give_back`` so the connection is not lost."""
        try:
            return await asyncio.wait_for(future, self.settings.pool_timeout)
        except TimeoutError:
            self.timeouts += 1
            raise PoolTimeout(
                f"{waited_for} within pool_timeout={self.settings.pool_timeout}s"
            ) from None
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                give_back(future.result())
            raise

    def end_hold(self) -> None:
        self._writer_busy = False
        self._writer_last_used = time.monotonic()
        self._kick()
        self._schedule_sweep()

    def _kick(self) -> None:
        """Start the next writer work if the writer is free."""
        if self._writer_busy:
            return
        work = self._queue.take()
        if work is None:
            return
        self._writer_busy = True
        if isinstance(work, HoldRequest):
            work.future.set_result(Hold(self))
        else:
            self._spawn(self._run_writes(work))

    async def _run_writes(self, batch: list[WriteRequest]) -> None:
        jobs = [r.job for r in batch]
        timeout = self.settings.statement_timeout
        alone = batch[0].alone

        def work(conn: Conn) -> Outcome:
            if alone:
                return run_alone(conn, jobs[0], timeout)
            return run_group(conn, jobs, timeout)

        try:
            outcome = await self.loop.run_in_executor(self.writer_executor, self.with_writer, work)
        except BaseException as exc:  # BEGIN or COMMIT failed: nobody's write is in
            err = translate(exc)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(err)
            if not isinstance(exc, Exception):
                raise
        else:
            self.group_commits += 1
            self.grouped_writes += len(batch)
            # Versions move before anyone hears back: an acknowledged write is never
            # followed by a read served from a result cached before it.
            self.on_commit(outcome)
            for request in batch:
                if not request.future.done():
                    request.future.set_result(request.job)
        finally:
            self.end_hold()  # the writer is free again, as after a hold

    def writer_idle(self) -> Conn | None:
        """The writer if it is open and nobody is using it (safe to touch from the loop)."""
        if self.writer is not None and not self._writer_busy and not self._queue:
            return self.writer
        return None

    # -- idle close ------------------------------------------------------------------------

    def _schedule_sweep(self, delay: float | None = None) -> None:
        timeout = self.settings.idle_timeout
        if timeout <= 0 or self._sweep_timer is not None or self.closing:
            return
        self._sweep_timer = self.loop.call_later(timeout if delay is None else delay, self._sweep)

    def _sweep(self) -> None:
        self._sweep_timer = None
        if self.closing:
            return
        cutoff = time.monotonic() - self.settings.idle_timeout
        self._spawn(self.close_idle(cutoff))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # The loop keeps only weak references to tasks; keep ours until they finish.
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_idle(self, cutoff: float | None = None) -> None:
        """Close connections unused since ``cutoff`` (None: every connection not in use).

        The writer closes only together with the last reader, after a checkpoint, so that
        the database file alone holds every committed row.
        """
        if cutoff is None:
            cutoff = time.monotonic()
        for conn in [c for c in self._idle if c.last_used <= cutoff]:
            self._idle.remove(conn)
            self._close_reader(conn, idle=True)
        if (
            self.writer is not None
            and self._readers_open == 0
            and self.writer_idle() is not None
            and self._writer_last_used <= cutoff
        ):
            hold = await self._hold()
            try:
                # Someone may have used the writer while we queued; then it is not idle.
                if self._writer_last_used <= cutoff and self._readers_open == 0:
                    await self.loop.run_in_executor(self.writer_executor, self._close_writer)
                    self.idle_closes += 1
            finally:
                hold.release()
        if self.connections_open and self.settings.idle_timeout > 0:
            # Next sweep when the least recently used connection still open turns idle.
            now = time.monotonic()
            used = [c.last_used for c in self._idle]
            if self._readers_open > len(self._idle):
                used.append(now)  # a reader in use: its release schedules the sweep again
            elif self.writer is not None:
                # In use: its release schedules the sweep again.
                used.append(now if self._writer_busy else self._writer_last_used)
            oldest = min(used, default=now)
            delay = oldest + self.settings.idle_timeout - now
            self._schedule_sweep(max(delay, 0.01))

    def _close_writer(self) -> None:
        """Writer thread: checkpoint (or the replication handler), then close the writer."""
        conn = self.writer
        if conn is None:
            return
        try:
            if self.idle_close_handler is not None:
                self.idle_close_handler(conn.db)
            else:
                conn.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except Exception:
            log.exception("checkpoint before closing the writer failed")
        self.writer = None
        self.closes += 1
        try:
            conn.close()
        except apsw.Error:
            log.exception("closing the writer failed")
        self._went_dark()

    # -- close -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish queued writes, close every connection (checkpointing first), stop threads."""
        if self.closing:
            return
        # Queue behind every pending write and hold: they finish first.
        hold = await self._hold_for_close()
        self.closing = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        self._queue.stop_expiry()
        for waiter in self._reader_waiters:
            if not waiter.done():
                waiter.set_exception(StoreClosedError("the store is closed"))
        self._reader_waiters.clear()
        for conn in list(self._idle):
            self._idle.remove(conn)
            self._close_reader(conn, idle=False)
        if self._readers_open:
            self._readers_drained = self.loop.create_future()
            await self._readers_drained
        try:
            await self.loop.run_in_executor(self.writer_executor, self._close_writer)
        finally:
            hold.released = True
            self._writer_busy = False
        self.writer_executor.shutdown(wait=False)
        self.reader_executor.shutdown(wait=False)

    async def _hold_for_close(self) -> Hold:
        future: asyncio.Future[Hold] = self.loop.create_future()
        self._queue.add_hold(HoldRequest(future))
        self._kick()
        return await future
