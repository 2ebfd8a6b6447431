"""The Store: the async face of one SQLite database.

Reads run on a read-only connection: inline on the event loop when an idle reader is at hand
and SQLite answers within ``inline_budget`` VM steps (a progress handler aborts anything
longer, which then re-runs on a pool thread), otherwise on a pool thread. Writes go through
the writer's group commit. Explicit transactions and sessions hold a connection of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import apsw

from ..config import Settings
from ..errors import (
    CacheError,
    ConfigError,
    InvalidRequest,
    NoSuchColumnError,
    NoSuchTableError,
    ParameterError,
    StoreClosedError,
)
from .analysis import Analysis, AnalysisCache, description_of
from .analyzer import Analyzer
from .batch_settings import batch_with_settings, sets_session_pragma, setting_alone
from .commits import CommitListener, CommitPublisher
from .connection import Conn
from .execution import Outcome, WriteJob, run_statement
from .external import ExternalWatch
from .params import check_params, raise_bind_error
from .pool import ConnectionHook, IdleCloseHandler, Pool
from .read_batch import read_batch
from .read_cache import KeyValueCache, ReadCache, ReadCacheFigures
from .results import Description, Params, Result, TableDeps
from .roles import ReplicationRole
from .schema import DEFAULT_SCHEMAS_DIR, apply_schema_dir
from .sqlerrors import translate
from .streaming import DEFAULT_CHUNK_ROWS, RowStream, open_autocommit
from .thread_reads import call_translated, release_after, thread_read
from .txn_errors import not_a_read, not_here
from .versions import TableVersions

if TYPE_CHECKING:
    from .transaction import Session, Transaction

__all__ = ["Store", "open"]

T = TypeVar("T")

_CHECKPOINT_MODES = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")


class Store:
    """One SQLite database behind the pool. Create it with :func:`edgestore.open`."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.path: Path = settings.db_path
        self.loop = loop
        self.versions = TableVersions()
        self.pool = Pool(self.path, settings, loop)
        self.pool.on_external = self.external_change
        self._analyses = AnalysisCache()
        self.commits = CommitPublisher(self.versions, self._analyses.clear)
        """Announces each commit: table versions, commit listeners (storage/commits.py)."""
        self.pool.on_commit = self.commits.publish
        self.analyzer = Analyzer(self._analyses, self.pool, settings, loop, self.check_open)
        # Bound once (the analysis of a new SQL text); cached ones are read from _analyses.
        self.analysis: Callable[[str], Coroutine[Any, Any, Analysis]] = self.analyzer.analysis
        """The analysis of ``sql`` (cached per SQL text; ``Analyzer.analysis``)."""
        self.inline_reads = settings.inline_budget > 0
        self.closed = False
        self.read_cache: ReadCache | None = None
        """Serves ``query(..., cache=True)`` when set (``edgestore.open`` attaches one)."""
        self.external = ExternalWatch(self.path, self.pool, self.external_change)
        # Bound once: check_external runs on every cache hit.
        self.check_external: Callable[[], bool] = self.external.check
        """Notice another process's commit since the last look; False if it cannot tell
        (``ExternalWatch.check``)."""
        self.data_version_moved: Callable[[Conn], None] = self.external.data_version_moved
        """A reader saw new commits: tell ours from another process's (``ExternalWatch``)."""
        self._checkpoint_handler: Callable[[], Awaitable[object]] | None = None
        self.replication_role: ReplicationRole | None = None
        """The role ``edgestore.replication`` composed this store with (None: plain)."""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # Open the writer first: it creates the file and switches it to WAL, so readers
        # (read-only, they cannot do either) always find a WAL database.
        await self.run_on_writer(lambda db: None)
        directory = self.settings.schemas_dir
        if directory is not None:
            if directory.is_dir():
                await self.apply_schemas(directory)
            elif directory != DEFAULT_SCHEMAS_DIR:
                raise ConfigError(f"schemas_dir {str(directory)!r} is not a directory")
        if self.read_cache is not None:
            await self.read_cache.start()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish queued writes, checkpoint, close every connection. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.read_cache is not None:
            await self.read_cache.close()
        self.external.close()
        await self.pool.close()

    def check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("the store is closed")

    # -- analysis --------------------------------------------------------------------------

    def deps(self, sql: str) -> TableDeps:
        """Tables ``sql`` reads and writes, from SQLite's authorizer (cached per SQL text)."""
        analysis = self._analyses.get(sql)
        if analysis is None:
            analysis = self.analyzer.now(sql)
        return analysis.deps

    async def describe(self, sql: str) -> Description:
        """Columns, parameters and read-only-ness of ``sql`` without running it."""
        return description_of(await self.analysis(sql))

    # -- reads -----------------------------------------------------------------------------

    async def query(
        self,
        sql: str,
        params: Params = None,
        *,
        cache: bool | None = None,
        ttl: float | None = None,
        max_rows: int | None = None,
    ) -> Result:
        """Run a read-only statement; a statement that would write raises ReadOnlyError."""
        self.check_open()
        analysis = self._analyses.get(sql) or await self.analysis(sql)
        if analysis.kind != "read":
            raise not_a_read(analysis)
        caching = self.read_cache
        if (
            caching is not None
            and (cache if cache is not None else caching.default)
            and caching.admit(sql, params, max_rows)
        ):
            # (admit: False for a first read turned away by the cache's doorkeeper.)
            check_params(analysis, params)  # before they become part of a cache key
            try:
                hit = caching.hit(sql, analysis, params, max_rows)
                if hit is not None:
                    return hit
                return await caching.read(
                    sql,
                    analysis,
                    params,
                    ttl,
                    max_rows,
                    lambda: self._read(analysis, params, max_rows),
                )
            except UnicodeEncodeError as exc:  # text that is not valid Unicode, in the key
                raise_bind_error(analysis, params, exc)
        if params is not None and type(params) is not list and type(params) is not tuple:
            check_params(analysis, params)
        # A list or tuple is checked while binding (run_statement names the parameter at
        # fault, and the reader goes back): checking every value first costs a point read ~5%.
        return await self._read(analysis, params, max_rows)

    # -- the read cache (attached by edgestore.open) ---------------------------------------

    @property
    def cache(self) -> KeyValueCache:
        """Application key/value cache (same byte budget as the query cache)."""
        if self.read_cache is None:
            raise CacheError("this store has no cache: open it with edgestore.open()")
        return self.read_cache.kv

    def cache_stats(self) -> ReadCacheFigures | None:
        """The read cache's figures, None without one (a ``CacheStats`` from edgestore.open)."""
        return None if self.read_cache is None else self.read_cache.stats()

    async def _read(self, analysis: Analysis, params: Params, max_rows: int | None) -> Result:
        pool = self.pool
        conn = pool.take_reader()
        if conn is not None and self.inline_reads:
            guard = conn.guard
            db = conn.db
            guard.start_inline()
            # Never sleep in a busy handler on the event loop: a lock means "use a thread".
            db.set_busy_timeout(0)
            try:
                try:
                    result = run_statement(conn, analysis, params, max_rows)
                finally:
                    guard.stop()
                    db.set_busy_timeout(self.settings.busy_timeout_ms)
            except (apsw.InterruptError, apsw.BusyError):
                # Over the inline budget (or locked): finish it on a thread, off the loop.
                pool.inline_overruns += 1
            except BaseException as exc:
                # Whatever it was (not only SQLite's errors), the reader goes back.
                pool.release_reader(conn)
                if isinstance(exc, apsw.Error):
                    raise translate(exc) from exc
                raise
            else:
                try:
                    pool.inline_runs += 1
                    if conn.db.data_version() != conn.last_dv:
                        self.data_version_moved(conn)
                finally:
                    pool.release_reader(conn)
                return result
        if conn is None:
            if pool.max_readers == 0:
                return await self._read_on_writer(analysis, params, max_rows)
            conn = await pool.acquire_reader()
        running = self.loop.run_in_executor(
            pool.reader_executor, thread_read, conn, analysis, params, max_rows, self.settings
        )
        try:
            result = await asyncio.shield(running)
            pool.thread_runs += 1
            if conn.db.data_version() != conn.last_dv:
                self.data_version_moved(conn)
        except asyncio.CancelledError:
            if not running.done():
                # The thread is still inside SQLite on this reader: stop it, and give the
                # reader back only once the thread let go of it.
                conn.db.interrupt()
                running.add_done_callback(lambda done: release_after(pool, conn, done))
                raise
            pool.release_reader(conn)
            raise
        except BaseException:
            pool.release_reader(conn)
            raise
        pool.release_reader(conn)
        return result

    async def _read_on_writer(
        self, analysis: Analysis, params: Params, max_rows: int | None
    ) -> Result:
        hold = await self.pool.hold()
        try:
            return await hold.run(
                lambda conn: thread_read(conn, analysis, params, max_rows, self.settings)
            )
        finally:
            hold.release()

    def refresh_external(self) -> None:
        """Notice writes made by other processes now (see ``ExternalWatch.refresh``)."""
        self.external.refresh()

    def external_change(self) -> None:
        self._analyses.clear()
        self.versions.bump_all()

    # -- writes ----------------------------------------------------------------------------

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        """Run one statement: reads on a reader, writes through the writer's group commit."""
        if self.closed:
            raise StoreClosedError("the store is closed")
        analysis = self._analyses.get(sql) or await self.analysis(sql)
        check_params(analysis, params)
        kind = analysis.kind
        if kind == "read":
            return await self._read(analysis, params, max_rows)
        if kind in ("write", "standalone"):
            job = WriteJob([(analysis, params)], max_rows=max_rows)
            await self.pool.submit(job, alone=kind == "standalone")
            if job.error is not None:
                raise job.error
            return job.results[0]
        if kind == "setting":
            return setting_alone(analysis)
        raise not_here(analysis)

    def stream(
        self,
        sql: str,
        params: Params = None,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        max_bytes: int = 0,
    ) -> RowStream:
        """The rows of one statement in chunks, read as SQLite produces them.

        A read holds a reader until the stream is exhausted, closed or cancelled, so memory
        is bounded by a chunk; any other statement runs through :meth:`execute` and its
        result is handed out in chunks. ``max_bytes`` > 0 stops the rows with
        ResponseTooLarge once they pass it. ``async with store.stream(sql) as rows: cols =
        await rows.start(); async for chunk in rows: ...``; see ``storage.streaming``.
        """
        return RowStream(
            self, lambda rows: open_autocommit(self, rows, sql, params), chunk_rows, max_bytes
        )

    async def batch(
        self, stmts: Sequence[tuple[str, Params]], *, max_rows: int | None = None
    ) -> list[Result]:
        """Run statements atomically, in order, in one transaction: all commit or none do.
        Each result holds at most ``max_rows`` rows (the rest are cut, ``truncated``)."""
        self.check_open()
        if not stmts:
            return []
        if any(sets_session_pragma(sql) for sql, _ in stmts):
            # Run on a session, each statement analysed (and its parameters checked, as
            # Session.execute does) once the ones before it have run.
            return await batch_with_settings(self, stmts, max_rows)
        analyses: list[tuple[Analysis, Params]] = []
        for sql, params in stmts:
            try:
                analyses.append((await self.analysis(sql), params))
            except (NoSuchTableError, NoSuchColumnError):
                if all(a.kind == "read" for a, _ in analyses):
                    raise
                # It may name what an earlier statement creates: analyse each as it comes.
                return await batch_with_settings(self, stmts, max_rows)
        for index, (analysis, params) in enumerate(analyses):
            if analysis.kind not in ("read", "write", "standalone"):
                raise not_here(analysis)
            try:
                check_params(analysis, params)
            except ParameterError as err:
                err.detail = f"statement {index + 1} of the batch failed: {err.detail}"
                err.args = (err.detail,)
                raise
        if self.pool.max_readers > 0 and all(a.kind == "read" for a, _ in analyses):
            return await read_batch(self, analyses, max_rows)
        job = WriteJob(analyses, single=False, max_rows=max_rows)
        await self.pool.submit(job)
        if job.error is not None:
            raise job.error
        return job.results

    # -- transactions and sessions ---------------------------------------------------------

    def transaction(self, *, timeout: float | None = None) -> Transaction:
        """``async with store.transaction() as tx:`` one writer transaction (IMMEDIATE).

        Commits on a clean exit, rolls back on an exception. It holds the writer exclusively
        and is rolled back once older than ``timeout`` (default ``transaction_timeout``).
        """
        from .transaction import Transaction

        self.check_open()
        return Transaction(self, timeout or self.settings.transaction_timeout)

    async def session(self) -> Session:
        """A stateful SQL session (BEGIN/COMMIT in SQL), e.g. for one Hrana stream."""
        from .transaction import Session

        self.check_open()
        return Session(self)

    # -- maintenance -----------------------------------------------------------------------

    async def apply_schemas(self, directory: str | Path | None = None) -> list[str]:
        """Apply ``NNNN_name.sql`` files not applied yet; returns the names applied."""
        self.check_open()
        path = Path(directory) if directory is not None else self.settings.schemas_dir
        if path is None:
            return []
        applied = await self.run_on_writer(lambda db: apply_schema_dir(db, path))
        if applied:
            self.commits.publish(Outcome(schema_change=True, committed=True))
        return applied

    async def close_idle(self) -> None:
        """Close every connection not in use right now (memory pressure action)."""
        if not self.closed:
            await self.pool.close_idle(None)

    async def checkpoint(self, mode: str = "TRUNCATE") -> None:
        """Checkpoint the WAL into the database file (PASSIVE, FULL, RESTART or TRUNCATE)."""
        mode = mode.upper()
        if mode not in _CHECKPOINT_MODES:
            raise InvalidRequest(f"checkpoint mode must be one of {', '.join(_CHECKPOINT_MODES)}")
        if self._checkpoint_handler is not None:
            # A replication primary: a raw checkpoint mid-generation would strand replicas
            # behind it, the handler ends the generation instead (archives, then checkpoints).
            await self._checkpoint_handler()
            return
        await self.run_on_writer(lambda db: db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall())

    async def invalidate(self, table: str | None = None) -> None:
        """Mark ``table`` (or everything) as changed, e.g. after writes made behind our back."""
        if table is None:
            self.external_change()
        else:
            self.versions.bump([table])

    # -- hooks for replication -------------------------------------------------------------

    def add_connection_hook(self, fn: ConnectionHook) -> None:
        """Call ``fn(connection, role)`` for every connection (open ones before their next use)."""
        self.pool.add_hook(fn)

    def set_replication_role(self, role: ReplicationRole | None) -> None:
        """Give this store its replication role (``edgestore.replication`` does, at open)."""
        self.replication_role = role

    def set_checkpoint_handler(self, fn: Callable[[], Awaitable[object]] | None) -> None:
        """Run ``fn()`` instead of SQLite's checkpoint on :meth:`checkpoint`."""
        self._checkpoint_handler = fn

    def set_idle_close_handler(self, fn: IdleCloseHandler | None) -> None:
        """Replace the checkpoint run on the writer before the last connection closes."""
        self.pool.idle_close_handler = fn

    async def run_on_writer(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(writer)`` on the writer thread with the writer held exclusively."""
        self.check_open()
        hold = await self.pool.hold()
        try:
            return await hold.run(lambda conn: call_translated(fn, conn.db))
        finally:
            hold.release()

    def add_commit_listener(self, fn: CommitListener) -> Callable[[], None]:
        """Call ``fn(tables_written)`` on the event loop after each commit through this store."""
        return self.commits.add_listener(fn)

    # -- the engine (engine.Engine): what transactions, sessions and streams use ----------

    def publish(self, outcome: Outcome) -> None:
        """Announce a commit made on a connection held outside group commit."""
        self.commits.publish(outcome)

    def cached_analysis(self, sql: str) -> Analysis | None:
        """The analysis of ``sql`` if it is cached (no await, no connection)."""
        return self._analyses.get(sql)

    def remember(self, analysis: Analysis, generation: int) -> None:
        """Cache an analysis made elsewhere, unless the schema moved since ``generation``."""
        self._analyses.put(analysis, generation)

    @property
    def analysis_generation(self) -> int:
        """Moves when cached analyses are dropped (schema change, external write)."""
        return self._analyses.generation
