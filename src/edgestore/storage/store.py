"""The Store: the async face of one SQLite database.

Reads run on a read-only connection: inline on the event loop when an idle reader is at hand
and SQLite answers within ``inline_budget`` VM steps (a progress handler aborts anything
longer, which then re-runs on a pool thread), otherwise on a pool thread. Writes go through
the writer's group commit. Explicit transactions and sessions hold a connection of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import apsw

from ..config import Settings
from ..errors import (
    ConfigError,
    DatabaseError,
    EdgestoreError,
    InvalidRequest,
    NoSuchColumnError,
    NoSuchTableError,
    ParameterError,
    ReadOnlyError,
    StoreClosedError,
)
from .analysis import Analysis, AnalysisCache, analyze, description_of
from .batch_settings import batch_with_settings, sets_session_pragma, setting_alone
from .connection import Conn, open_connection
from .execution import Outcome, WriteJob, pragma_data_version, run_statement
from .params import check_params, raise_bind_error
from .pool import ConnectionHook, IdleCloseHandler, Pool
from .read_batch import read_batch
from .results import Description, Params, Result, TableDeps
from .schema import DEFAULT_SCHEMAS_DIR, apply_schema_dir
from .sqlerrors import translate
from .streaming import DEFAULT_CHUNK_ROWS, RowStream, open_autocommit
from .versions import TableVersions

if TYPE_CHECKING:
    from ..cache.kv import KVCache
    from ..cache.query import QueryCache
    from .transaction import Session, Transaction

__all__ = ["Store", "open"]

log = logging.getLogger(__name__)

T = TypeVar("T")
CommitListener = Callable[[frozenset[str]], None]

_CHECKPOINT_MODES = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")


class Store:
    """One SQLite database behind the pool. Create it with :func:`edgestore.open`."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.path: Path = settings.db_path
        self.loop = loop
        self.versions = TableVersions()
        self.pool = Pool(self.path, settings, loop)
        self.pool.on_commit = self._on_commit
        self.pool.on_external = self._external_change
        self._analyses = AnalysisCache()
        self._commit_listeners: list[CommitListener] = []
        self._inline = settings.inline_budget > 0
        self.closed = False
        # Query cache + key/value cache (owner: cache; see edgestore.cache.store_cache).
        # Imported here: edgestore.cache imports storage.results, a cycle at module level.
        from ..cache.store_cache import StoreCache

        self._caching = StoreCache(self)

    # -- lifecycle -------------------------------------------------------------------------

    async def _start(self) -> None:
        # Open the writer first: it creates the file and switches it to WAL, so readers
        # (read-only, they cannot do either) always find a WAL database.
        await self.run_on_writer(lambda db: None)
        directory = self.settings.schemas_dir
        if directory is not None:
            if directory.is_dir():
                await self.apply_schemas(directory)
            elif directory != DEFAULT_SCHEMAS_DIR:
                raise ConfigError(f"schemas_dir {str(directory)!r} is not a directory")
        await self._caching.start()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish queued writes, checkpoint, close every connection. Idempotent."""
        if self.closed:
            return
        self.closed = True
        await self._caching.close()
        await self.pool.close()

    def _check_open(self) -> None:
        if self.closed:
            raise StoreClosedError("the store is closed")

    # -- analysis --------------------------------------------------------------------------

    def deps(self, sql: str) -> TableDeps:
        """Tables ``sql`` reads and writes, from SQLite's authorizer (cached per SQL text)."""
        analysis = self._analyses.get(sql)
        if analysis is None:
            analysis = self._analyze_now(sql)
        return analysis.deps

    def _analyze_now(self, sql: str) -> Analysis:
        # Synchronous: an idle reader, else the idle writer, else a short-lived read-only
        # connection (only when every pooled one is busy and this SQL text is new).
        self._check_open()
        generation = self._analyses.generation
        analysis = self._analyze_on_idle_reader(sql)
        if analysis is None:
            if (writer := self.pool.writer_idle()) is not None:
                analysis = analyze(writer.db, sql)
            else:
                temp = open_connection(self.path, self.settings, "reader")
                try:
                    analysis = analyze(temp.db, sql)
                finally:
                    temp.close()
        self._analyses.put(analysis, generation)
        return analysis

    def _analyze_on_idle_reader(self, sql: str) -> Analysis | None:
        # The cheap first try of both analysis paths; None when no reader is idle.
        conn = self.pool.take_reader()
        if conn is None:
            return None
        try:
            return analyze(conn.db, sql)
        finally:
            self.pool.release_reader(conn)

    async def _analysis(self, sql: str) -> Analysis:
        analysis = self._analyses.get(sql)
        if analysis is not None:
            return analysis
        self._check_open()
        generation = self._analyses.generation
        analysis = self._analyze_on_idle_reader(sql)
        if analysis is None:
            if self.pool.max_readers == 0:
                analysis = await self.run_on_writer(lambda db: analyze(db, sql))
            else:
                conn = await self.pool.acquire_reader()
                try:
                    analysis = await self.loop.run_in_executor(
                        self.pool.reader_executor, analyze, conn.db, sql
                    )
                finally:
                    self.pool.release_reader(conn)
        self._analyses.put(analysis, generation)
        return analysis

    async def describe(self, sql: str) -> Description:
        """Columns, parameters and read-only-ness of ``sql`` without running it."""
        return description_of(await self._analysis(sql))

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
        self._check_open()
        analysis = self._analyses.get(sql) or await self._analysis(sql)
        if analysis.kind != "read":
            raise _not_a_read(analysis)
        caching = self._caching
        if (cache if cache is not None else caching.default) and caching.admit(
            sql, params, max_rows
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

    # -- caches (owner: cache) ---------------------------------------------------------------

    @property
    def cache(self) -> KVCache:
        """Application key/value cache (same byte budget as the query cache)."""
        return self._caching.kv

    @property
    def query_cache(self) -> QueryCache:
        """The cache behind ``query(..., cache=True)``."""
        return self._caching.query

    def cache_stats(self) -> dict[str, Any]:
        """Cache figures: entries, bytes, hit rates, compression, query cache counters."""
        return self._caching.stats()

    async def _read(self, analysis: Analysis, params: Params, max_rows: int | None) -> Result:
        pool = self.pool
        conn = pool.take_reader()
        if conn is not None and self._inline:
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
                        self._data_version_moved(conn)
                finally:
                    pool.release_reader(conn)
                return result
        if conn is None:
            if pool.max_readers == 0:
                return await self._read_on_writer(analysis, params, max_rows)
            conn = await pool.acquire_reader()
        running = self.loop.run_in_executor(
            pool.reader_executor, _thread_read, conn, analysis, params, max_rows, self.settings
        )
        try:
            result = await asyncio.shield(running)
            pool.thread_runs += 1
            if conn.db.data_version() != conn.last_dv:
                self._data_version_moved(conn)
        except asyncio.CancelledError:
            if not running.done():
                # The thread is still inside SQLite on this reader: stop it, and give the
                # reader back only once the thread let go of it.
                conn.db.interrupt()
                running.add_done_callback(lambda done: _release_after(pool, conn, done))
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
                lambda conn: _thread_read(conn, analysis, params, max_rows, self.settings)
            )
        finally:
            hold.release()

    def _data_version_moved(self, conn: Conn) -> None:
        """A reader saw new commits. Ours, another process's, or both?"""
        conn.last_dv = conn.db.data_version()
        seq = self.pool.writer_seq
        if seq == conn.seen_commits:
            self._external_change()
            return
        conn.seen_commits = seq
        # Our writer ran meanwhile; its own PRAGMA data_version only moves for commits by
        # others. If it is busy, its next group commit checks that inside its transaction;
        # if it is closed, nothing can tell: assume the worst.
        if self.pool.writer is None:
            self._external_change()
            return
        writer = self.pool.writer_idle()
        if writer is not None:
            try:
                dv = pragma_data_version(writer.db)
            except apsw.Error:
                return
            if dv != writer.last_dv:
                writer.last_dv = dv
                self._external_change()

    def refresh_external(self) -> None:
        """Notice writes made by other processes now (call before serving a cached read).

        Runs ``PRAGMA data_version`` on an idle reader (about 2 µs), or compares file
        fingerprints while no connection is open. With every reader busy it does nothing:
        each read checks the data version after it ran anyway.
        """
        pool = self.pool
        if pool.connections_open == 0:
            pool.check_dark()
            return
        conn = pool.idle_reader()
        if conn is None:
            return
        try:
            conn.db.execute("PRAGMA data_version").fetchall()
            if conn.db.data_version() != conn.last_dv:
                self._data_version_moved(conn)
        except apsw.Error:
            log.exception("checking the data version failed")
        finally:
            pool.release_reader(conn)

    def _external_change(self) -> None:
        self._analyses.clear()
        self.versions.bump_all()

    # -- writes ----------------------------------------------------------------------------

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result:
        """Run one statement: reads on a reader, writes through the writer's group commit."""
        if self.closed:
            raise StoreClosedError("the store is closed")
        analysis = self._analyses.get(sql) or await self._analysis(sql)
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
        raise _not_here(analysis)

    def stream(
        self, sql: str, params: Params = None, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
    ) -> RowStream:
        """The rows of one statement in chunks, read as SQLite produces them.

        A read holds a reader until the stream is exhausted, closed or cancelled, so memory
        is bounded by a chunk; any other statement runs through :meth:`execute` and its
        result is handed out in chunks. ``async with store.stream(sql) as rows: cols = await
        rows.start(); async for chunk in rows: ...``; see ``storage.streaming``.
        """
        return RowStream(self, lambda rows: open_autocommit(self, rows, sql, params), chunk_rows)

    async def batch(self, stmts: Sequence[tuple[str, Params]]) -> list[Result]:
        """Run statements atomically, in order, in one transaction: all commit or none do."""
        self._check_open()
        if not stmts:
            return []
        if any(sets_session_pragma(sql) for sql, _ in stmts):
            # Run on a session, each statement analysed (and its parameters checked, as
            # Session.execute does) once the ones before it have run.
            return await batch_with_settings(self, stmts)
        analyses: list[tuple[Analysis, Params]] = []
        for sql, params in stmts:
            try:
                analyses.append((await self._analysis(sql), params))
            except (NoSuchTableError, NoSuchColumnError):
                if all(a.kind == "read" for a, _ in analyses):
                    raise
                # It may name what an earlier statement creates: analyse each as it comes.
                return await batch_with_settings(self, stmts)
        for index, (analysis, params) in enumerate(analyses):
            if analysis.kind not in ("read", "write", "standalone"):
                raise _not_here(analysis)
            try:
                check_params(analysis, params)
            except ParameterError as err:
                err.detail = f"statement {index + 1} of the batch failed: {err.detail}"
                err.args = (err.detail,)
                raise
        if self.pool.max_readers > 0 and all(a.kind == "read" for a, _ in analyses):
            return await read_batch(self, analyses)
        job = WriteJob(analyses, single=False)
        await self.pool.submit(job)
        if job.error is not None:
            raise job.error
        return job.results

    def _on_commit(self, outcome: Outcome) -> None:
        if outcome.external or outcome.schema_change:
            self._analyses.clear()
            self.versions.bump_all()
        elif outcome.touches_all and outcome.committed:
            self.versions.bump_all()
        if outcome.written:
            self.versions.bump(outcome.written)
        if outcome.committed:
            written = frozenset(outcome.written)
            for listener in tuple(self._commit_listeners):
                try:
                    listener(written)
                except Exception:
                    log.exception("commit listener failed")

    # -- transactions and sessions ---------------------------------------------------------

    def transaction(self, *, timeout: float | None = None) -> Transaction:
        """``async with store.transaction() as tx:`` one writer transaction (IMMEDIATE).

        Commits on a clean exit, rolls back on an exception. It holds the writer exclusively
        and is rolled back once older than ``timeout`` (default ``transaction_timeout``).
        """
        from .transaction import Transaction

        self._check_open()
        return Transaction(self, timeout or self.settings.transaction_timeout)

    async def session(self) -> Session:
        """A stateful SQL session (BEGIN/COMMIT in SQL), e.g. for one Hrana stream."""
        from .transaction import Session

        self._check_open()
        return Session(self)

    # -- maintenance -----------------------------------------------------------------------

    async def apply_schemas(self, directory: str | Path | None = None) -> list[str]:
        """Apply ``NNNN_name.sql`` files not applied yet; returns the names applied."""
        self._check_open()
        path = Path(directory) if directory is not None else self.settings.schemas_dir
        if path is None:
            return []
        applied = await self.run_on_writer(lambda db: apply_schema_dir(db, path))
        if applied:
            self._on_commit(Outcome(schema_change=True, committed=True))
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
        from .replication import ReplicationPrimary

        primary = ReplicationPrimary.of(self)
        if primary is not None:
            # A raw checkpoint mid-generation would strand replicas behind it: end the
            # generation instead (archives its frames, then checkpoints).
            await primary.checkpoint()
            return
        await self.run_on_writer(lambda db: db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall())

    async def invalidate(self, table: str | None = None) -> None:
        """Mark ``table`` (or everything) as changed, e.g. after writes made behind our back."""
        if table is None:
            self._external_change()
        else:
            self.versions.bump([table])

    # -- hooks for replication -------------------------------------------------------------

    def add_connection_hook(self, fn: ConnectionHook) -> None:
        """Call ``fn(connection, role)`` for every connection (open ones before their next use)."""
        self.pool.add_hook(fn)

    def set_idle_close_handler(self, fn: IdleCloseHandler | None) -> None:
        """Replace the checkpoint run on the writer before the last connection closes."""
        self.pool.idle_close_handler = fn

    async def run_on_writer(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Run ``fn(writer)`` on the writer thread with the writer held exclusively."""
        self._check_open()
        hold = await self.pool.hold()
        try:
            return await hold.run(lambda conn: _call_translated(fn, conn.db))
        finally:
            hold.release()

    def add_commit_listener(self, fn: CommitListener) -> Callable[[], None]:
        """Call ``fn(tables_written)`` on the event loop after each commit through this store."""
        self._commit_listeners.append(fn)

        def remove() -> None:
            if fn in self._commit_listeners:
                self._commit_listeners.remove(fn)

        return remove

    # internal: used by transactions to publish their commit
    def _publish(self, outcome: Outcome) -> None:
        self._on_commit(outcome)

    def _cached_analysis(self, sql: str) -> Analysis | None:
        return self._analyses.get(sql)

    def _remember(self, analysis: Analysis, generation: int) -> None:
        self._analyses.put(analysis, generation)

    @property
    def _analysis_generation(self) -> int:
        return self._analyses.generation


def _release_after(pool: Pool, conn: Conn, done: asyncio.Future[Result]) -> None:
    if not done.cancelled():
        done.exception()  # nobody awaits it any more: the caller was cancelled
    pool.release_reader(conn)


def _call_translated(fn: Callable[[apsw.Connection], T], db: apsw.Connection) -> T:
    try:
        return fn(db)
    except apsw.Error as exc:
        raise translate(exc) from exc


def _thread_read(
    conn: Conn, analysis: Analysis, params: Params, max_rows: int | None, settings: Settings
) -> Result:
    guard = conn.guard
    guard.start_thread(settings.statement_timeout)
    try:
        return run_statement(conn, analysis, params, max_rows)
    except apsw.Error as exc:
        raise translate(exc, timeout=guard.timed_out) from exc
    finally:
        guard.stop()


def _not_a_read(analysis: Analysis) -> EdgestoreError:
    if analysis.kind in ("begin", "end", "savepoint", "refused"):
        return _not_here(analysis)
    return ReadOnlyError(
        "query() runs read-only statements; use execute() for writes",
        code="SQLITE_READONLY",
    )


def _not_here(analysis: Analysis) -> EdgestoreError:
    if analysis.kind == "refused":
        return DatabaseError(analysis.refusal or "not allowed", code="SQLITE_AUTH")
    return InvalidRequest(
        "transaction statements need a transaction or a session: "
        "use store.transaction() or store.session()"
    )


async def open(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> Store:
    """Open (creating if needed, in WAL mode) the database at ``path`` and apply schemas.

    ``settings`` defaults to ``Settings.load()`` (environment and config file); keyword
    ``overrides`` change individual settings (``idle_timeout=5``).
    """
    if path is not None:
        overrides["db_path"] = Path(path)
    fields = Settings.__dataclass_fields__
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}")
    if settings is None:
        settings = Settings.load(**overrides)
    given = {k: v for k, v in overrides.items() if v is not None}
    # Settings.load skips None (unset CLI options); here None is meant, for the optional
    # settings (schemas_dir=None: apply no schema).
    given.update(
        {k: None for k, v in overrides.items() if v is None and "None" in str(fields[k].type)}
    )
    settings = settings.replace(**given)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    if settings.replica_of:
        # A replica node: reads from a libsql embedded replica of the primary, writes are
        # forwarded to it (imported here: only replica nodes need libsql).
        from .replication.replica_store import open_replica

        return await open_replica(settings)
    store = Store(settings, asyncio.get_running_loop())
    try:
        await store._start()
    except BaseException:
        await store.close()
        raise
    return store
