"""A readers-writer lock between pulls/exports (shared) and a generation change (exclusive).

It is an ``flock`` on ``<db>-replication/lock``, taken through a fresh file descriptor each
time, so it excludes threads of this process and other processes alike (``workers > 1``, or
``edgestore replication checkpoint --offline`` next to a server). Waits poll with a bound.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ReplicationError

__all__ = ["FileRWLock"]


class FileRWLock:
    """Many readers or one writer, across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch(exist_ok=True)

    def _acquire(self, mode: int, timeout: float) -> int | None:
        fd = os.open(self.path, os.O_RDWR)
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)

    @contextmanager
    def shared(self, timeout: float = 30.0) -> Iterator[None]:
        fd = self._acquire(fcntl.LOCK_SH, timeout)
        if fd is None:
            raise ReplicationError("a generation change is in progress; retry")
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases its lock

    def acquire_exclusive(self, timeout: float) -> int | None:
        """The locked descriptor (pass it to :meth:`release`), or None after ``timeout``."""
        return self._acquire(fcntl.LOCK_EX, timeout)

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)
