"""While no connection of the pool is open ("dark"): the files' fingerprint, freed memory.

Nothing of ours watches the data version while every connection is closed, so the pool keeps
the database files' fingerprint from when the last one closed and compares it when asked (or
when the next connection opens). The page caches just freed go back to the OS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["fingerprint", "release_memory"]


def fingerprint(path: Path) -> tuple[object, ...]:
    """Inode, size and mtime of the database file and its WAL (None for a missing one)."""
    out: list[object] = []
    for suffix in ("", "-wal"):
        try:
            st = os.stat(str(path) + suffix)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


_malloc_trim: Callable[[int], int] | None = None
_trim_checked = False


def release_memory() -> None:
    """Return free heap memory to the OS (glibc ``malloc_trim``); a no-op elsewhere."""
    global _malloc_trim, _trim_checked
    if not _trim_checked:
        _trim_checked = True
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                _malloc_trim = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
                _malloc_trim = None
    if _malloc_trim is not None:
        _malloc_trim(0)
