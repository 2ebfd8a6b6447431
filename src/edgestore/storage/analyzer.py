"""Analysing SQL texts on whichever connection is at hand, cached per text.

An analysis (``analysis.analyze``) prepares the statement under SQLite's authorizer; any
connection of the database can do it. The cheap first try is an idle reader on the calling
thread; then a reader on its thread (or the writer when there are no readers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..config import Settings
from .analysis import Analysis, AnalysisCache, analyze
from .connection import open_connection
from .pool import Pool

__all__ = ["Analyzer"]


class Analyzer:
    """Fills ``cache`` with the analyses of the SQL texts it is asked about."""

    def __init__(
        self,
        cache: AnalysisCache,
        pool: Pool,
        settings: Settings,
        loop: asyncio.AbstractEventLoop,
        check_open: Callable[[], None],
    ) -> None:
        self.cache = cache
        self.pool = pool
        self.settings = settings
        self.loop = loop
        self.check_open = check_open

    def now(self, sql: str) -> Analysis:
        """Synchronous: an idle reader, else the idle writer, else a short-lived read-only
        connection (only when every pooled one is busy and this SQL text is new)."""
        self.check_open()
        generation = self.cache.generation
        analysis = self._on_idle_reader(sql)
        if analysis is None:
            if (writer := self.pool.writer_idle()) is not None:
                analysis = analyze(writer.db, sql)
            else:
                temp = open_connection(self.settings.db_path, self.settings, "reader")
                try:
                    analysis = analyze(temp.db, sql)
                finally:
                    temp.close()
        self.cache.put(analysis, generation)
        return analysis

    def _on_idle_reader(self, sql: str) -> Analysis | None:
        # The cheap first try of both analysis paths; None when no reader is idle.
        conn = self.pool.take_reader()
        if conn is None:
            return None
        try:
            return analyze(conn.db, sql)
        finally:
            self.pool.release_reader(conn)

    async def analysis(self, sql: str) -> Analysis:
        """The analysis of ``sql``, from the cache or made now."""
        analysis = self.cache.get(sql)
        if analysis is not None:
            return analysis
        self.check_open()
        generation = self.cache.generation
        analysis = self._on_idle_reader(sql)
        if analysis is None:
            pool = self.pool
            if pool.max_readers == 0:
                hold = await pool.hold()
                try:
                    # analyze() raises edgestore's errors
                    analysis = await hold.run(lambda conn: analyze(conn.db, sql))
                finally:
                    hold.release()
            else:
                conn = await pool.acquire_reader()
                try:
                    analysis = await self.loop.run_in_executor(
                        pool.reader_executor, analyze, conn.db, sql
                    )
                finally:
                    pool.release_reader(conn)
        self.cache.put(analysis, generation)
        return analysis
