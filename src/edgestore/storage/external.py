"""Cheap detection of commits by other processes: the WAL-index header in ``<db>-shm``.

Every commit to a WAL database, by any process, rewrites the WAL-index header at the start of
the ``-shm`` file, so comparing those 48 bytes (read through a read-only mmap, well under a
microsecond) with the ones seen at the last full check tells whether a commit happened (ours
or someone else's). ``Store.check_external`` runs the full check (``PRAGMA data_version``)
only when they differ, or when the file is not there or was replaced.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Protocol

__all__ = ["ExternalWatch"]


class _Closes(Protocol):
    closes: int
    """How many of the pool's connections have closed so far."""


class ExternalWatch:
    """The ``-shm`` header of one database, and what the store's checks found.

    The mapping is dropped and made again when the file was unlinked (SQLite deletes it when
    the last connection closes; the next one creates a new file). That needs an ``fstat``
    only after one of our connections closed: while one of them stays open (the caller maps
    only with a connection open), no SQLite connection anywhere may delete the file.
    """

    def __init__(self, db_path: Path, pool: _Closes) -> None:
        self.path = str(db_path) + "-shm"
        self._pool = pool
        self._closes = -1
        self._fd = -1
        self._map: mmap.mmap | None = None
        self.seen_header: bytes | None = None
        """The header read before the last full check."""
        self.full_checks = 0
        self.fast_checks = 0

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
