"""Commits by other processes: noticed after reads, on demand, and cheaply before cache hits.

A reader whose ``data_version`` moved saw new commits; :meth:`ExternalWatch.data_version_moved`
tells ours from another process's (the store then drops what it derived from the old data:
``Store.external_change``).

Every commit to a WAL database, by any process, rewrites the WAL-index header at the start of
the ``-shm`` file, so comparing those 48 bytes (read through a read-only mmap, well under a
microsecond) with the ones seen at the last full check tells whether a commit happened (ours
or someone else's). :meth:`ExternalWatch.check` runs the full check (``PRAGMA data_version``)
only when they differ, or when the file is not there or was replaced.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Callable
from pathlib import Path

import apsw

from .connection import Conn
from .execution import pragma_data_version
from .pool import Pool

__all__ = ["ExternalWatch"]

log = logging.getLogger(__name__)


class ExternalWatch:
    """Another process's commits to one database; ``on_change()`` hears of them.

    The ``-shm`` header is read through a mapping kept open between checks.
    The mapping is dropped and made again when the file was unlinked (SQLite deletes it when
    the last connection closes; the next one creates a new file). That needs an ``fstat``
    only after one of our connections closed: while one of them stays open (the caller maps
    only with a connection open), no SQLite connection anywhere may delete the file.
    """

    def __init__(self, db_path: Path, pool: Pool, on_change: Callable[[], None]) -> None:
        self.path = str(db_path) + "-shm"
        self._pool = pool
        self._on_change = on_change
        self._closes = -1
        self._fd = -1
        self._map: mmap.mmap | None = None
        self.seen_header: bytes | None = None
        """The header read before the last full check."""
        self.full_checks = 0
        self.fast_checks = 0

    def data_version_moved(self, conn: Conn) -> None:
        """A reader saw new commits. Ours, another process's, or both?"""
        conn.last_dv = conn.db.data_version()
        pool = self._pool
        seq = pool.writer_seq
        if seq == conn.seen_commits:
            self._on_change()
            return
        conn.seen_commits = seq
        # Our writer ran meanwhile; its own PRAGMA data_version only moves for commits by
        # others. If it is busy, its next group commit checks that inside its transaction;
        # if it is closed, nothing can tell: assume the worst.
        if pool.writer is None:
            self._on_change()
            return
        writer = pool.writer_idle()
        if writer is not None:
            try:
                dv = pragma_data_version(writer.db)
            except apsw.Error:
                return
            if dv != writer.last_dv:
                writer.last_dv = dv
                self._on_change()

    def refresh(self) -> None:
        """Notice writes made by other processes now (call before serving a cached read).

        Runs ``PRAGMA data_version`` on an idle reader (about 2 µs), or compares file
        fingerprints while no connection is open. With every reader busy it does nothing:
        each read checks the data version after it ran anyway.
        """
        pool = self._pool
        if pool.connections_open == 0:
            pool.check_dark()
            return
        conn = pool.idle_reader()
        if conn is None:
            return
        try:
            conn.db.execute("PRAGMA data_version").fetchall()
            if conn.db.data_version() != conn.last_dv:
                self.data_version_moved(conn)
        except apsw.Error:
            log.exception("checking the data version failed")
        finally:
            pool.release_reader(conn)

    def check(self) -> bool:
        """Notice another process's commit since the last look; False if it cannot tell.

        Cheap enough for every cache hit: it compares the WAL-index header with the one seen
        at the last full check, and only when it moved (or cannot be read) runs ``PRAGMA
        data_version`` on an idle reader. False when no reader is idle for that.
        """
        pool = self._pool
        header = self.header() if pool.connections_open else None
        if header is not None and header == self.seen_header:
            self.fast_checks += 1
            return True
        conn = pool.take_reader()
        if conn is None:
            return False
        try:
            conn.db.execute("PRAGMA data_version").fetchall()
            if conn.db.data_version() != conn.last_dv:
                self.data_version_moved(conn)
        except apsw.Error:
            return False
        finally:
            pool.release_reader(conn)
        # The header read *before* the full check: a commit after it shows up next time.
        self.seen_header = header
        self.full_checks += 1
        return True

    def header(self) -> bytes | None:
        """The WAL-index header now, or None when the ``-shm`` file cannot be mapped."""
        m = self._map
        closes = self._pool.closes
        if m is None or (closes != self._closes and os.fstat(self._fd).st_nlink == 0):
            m = self._open()
            if m is None:
                return None
        self._closes = closes
        return m[:48]

    def _open(self) -> mmap.mmap | None:
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            m = mmap.mmap(fd, 4096, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # not initialised yet (shorter than a page)
            os.close(fd)
            return None
        self._fd, self._map = fd, m
        return m

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
