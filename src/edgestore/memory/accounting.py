"""Where the server's memory goes: the RSS of every process of the server, split by component.

Components (bytes, each figure from the owner's own counter where one exists):

- ``cache``: bytes charged to the compressed cache (stored values, keys, per-entry overhead);
- ``sqlite``: SQLite's own allocation counter (``sqlite3_memory_used``), which includes the
  page cache of every connection (``connections`` lists each one's page cache);
- ``streams``: bytes held for WebSocket connections and Hrana streams (messages in flight,
  stored SQL, cursor rows read ahead, stream state), as their owners report them to
  :class:`edgestore.memory.streams.StreamBuffers`;
- ``python_heap``: what the C allocator has handed out (``mallinfo2``) less the parts above:
  Python objects, interpreter state and C extensions' buffers;
- ``allocator_free``: memory the C allocator holds free but has not returned to the OS
  (fragmentation; ``malloc_trim`` gives back what it can);
- ``code``: file-backed pages (the interpreter, shared libraries, mapped files);
- ``rest``: the unexplained remainder (Python's small-object arenas, thread stacks, the HTTP
  server's own allocations); it is what to look at when the total grows and nothing else does.

``other_processes`` holds the RSS of the server's other processes (granian's master and the
sibling workers when ``workers > 1``); it is part of the total the pressure levels act on.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from .sampler import rss_bytes

__all__ = [
    "Breakdown",
    "Components",
    "ConnectionCache",
    "allocator_stats",
    "connection_cache_bytes",
    "file_backed_bytes",
    "process_tree_rss",
    "server_rss",
    "sqlite_memory_used",
]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Components(msgspec.Struct, frozen=True, kw_only=True):
    """This process's resident memory by component, in bytes (see the module docstring)."""

    cache: int
    sqlite: int
    streams: int
    python_heap: int
    allocator_free: int
    code: int
    rest: int


class ConnectionCache(msgspec.Struct, frozen=True, kw_only=True):
    """One SQLite connection's page cache."""

    role: str
    """``writer`` or ``reader``."""
    page_cache_bytes: int | None
    """None while another thread was using the connection (not measured then)."""


class Breakdown(msgspec.Struct, frozen=True, kw_only=True):
    """One accounting of the server's memory (bytes)."""

    total_bytes: int
    """Every process of the server: this one plus ``other_processes``."""
    own_rss_bytes: int
    other_processes: dict[int, int]
    """RSS in bytes by pid (JSON object keys are the pids as strings)."""
    components: Components
    connections: list[ConnectionCache] = msgspec.field(default_factory=list)


class _MallInfo2(ctypes.Structure):
    # struct mallinfo2 (glibc >= 2.33): ten size_t fields in this order.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_mallinfo2: Callable[[], _MallInfo2] | None = None
_mallinfo_checked = False


def allocator_stats() -> tuple[int, int] | None:
    """(bytes in use, bytes free but kept) of glibc's malloc, or None off glibc."""
    global _mallinfo2, _mallinfo_checked
    if not _mallinfo_checked:
        _mallinfo_checked = True
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None).mallinfo2
            except (OSError, AttributeError):  # musl, or glibc older than 2.33
                fn = None
            if fn is not None:
                fn.restype = _MallInfo2
                fn.argtypes = []
                _mallinfo2 = fn
    if _mallinfo2 is None:
        return None
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd), int(info.fordblks)


def sqlite_memory_used() -> int:
    """SQLite's own count of the bytes it has allocated (all connections of this process)."""
    import apsw

    return int(apsw.memory_used())


def connection_cache_bytes(db: Any) -> int | None:
    """Page-cache bytes of one apsw connection, or None while another thread is using it."""
    import apsw

    try:
        return int(db.status(apsw.SQLITE_DBSTATUS_CACHE_USED)[0])
    except (apsw.ThreadingViolationError, apsw.ConnectionClosedError):
        return None


def file_backed_bytes(status: Path = Path("/proc/self/status")) -> int:
    """Resident file-backed pages of this process (code, shared libraries, mapped files)."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _statm_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                out.extend(int(p) for p in f.read().split())
    except (OSError, ValueError):
        pass
    return out


def process_tree_rss(root: int) -> dict[int, int]:
    """RSS of ``root`` and all its descendants, by pid (processes that vanished are left out)."""
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            continue
        rss = _statm_rss(pid)
        if rss is None:
            continue
        found[pid] = rss
        todo.extend(_children(pid))
    return found


def server_rss(server_root: int | None) -> int:
    """RSS of the whole server: this process, plus the tree under ``server_root`` if given."""
    own = rss_bytes()
    if server_root is None or server_root == os.getpid():
        return own
    me = os.getpid()
    return own + sum(r for p, r in process_tree_rss(server_root).items() if p != me)


def measure(
    *,
    server_root: int | None,
    cache_bytes: int,
    stream_bytes: int,
    connections: Iterable[tuple[str, Any]],
) -> Breakdown:
    """Account for the whole server now. ``server_root`` is the pid of the process that owns
    the server's process tree (granian's master with several workers), or None when this
    process is the whole server."""
    own = rss_bytes()
    others: dict[int, int] = {}
    if server_root is not None and server_root != os.getpid():
        others = {p: r for p, r in process_tree_rss(server_root).items() if p != os.getpid()}
    sqlite = sqlite_memory_used()
    per_conn = [
        ConnectionCache(role=role, page_cache_bytes=connection_cache_bytes(db))
        for role, db in connections
    ]
    alloc = allocator_stats()
    in_use, free = alloc if alloc is not None else (0, 0)
    python_heap = max(0, in_use - cache_bytes - sqlite - stream_bytes)
    code = file_backed_bytes()
    named = cache_bytes + sqlite + stream_bytes + python_heap + free + code
    components = Components(
        cache=cache_bytes,
        sqlite=sqlite,
        streams=stream_bytes,
        python_heap=python_heap,
        allocator_free=free,
        code=code,
        rest=max(0, own - named),
    )
    return Breakdown(
        total_bytes=own + sum(others.values()),
        own_rss_bytes=own,
        other_processes=others,
        components=components,
        connections=per_conn,
    )
