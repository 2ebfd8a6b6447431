"""Allocator settings for a long-running server process (glibc malloc, granian's jemalloc).

Measured with bench/bench_cache_rss.py (a 25 MiB cache written from many tasks with values of
100 B..64 KiB) and bench/bench_server_modes.py (idle RSS after load):

- glibc gives every thread that allocates an arena of its own (up to 8 per core); memory freed
  in one arena is never reused by another, so the pool's SQLite threads and compression off
  the event loop each kept their own high-water mark. Two arenas: ``M_ARENA_MAX``.
- Values of a few KiB to 64 KiB evicted from the cache leave holes in the heap that the next
  values, of other sizes, do not fill: RSS reached ~2x the cache cap. From 16 KiB up, glibc
  now maps each allocation on its own (``M_MMAP_THRESHOLD``, which also stops glibc raising
  that threshold by itself), so freeing one gives its pages straight back; the cost is one
  ``mmap``/``munmap`` per such allocation, and at most one page of rounding per value.
- granian's Rust side uses jemalloc, which keeps freed pages ~10 s and then only marks them
  reusable; purging them after 1 s from a background thread brings idle RSS back to its start
  after a burst of connections. jemalloc reads ``_RJEM_MALLOC_CONF`` when granian's extension
  first allocates, so this must run before granian is imported; an operator's own value wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

__all__ = ["MMAP_THRESHOLD", "tune_allocator"]

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 16 * 1024
_JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
_JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:1"


def tune_allocator() -> bool:
    """Apply the settings above to this process; True when glibc took them."""
    os.environ.setdefault(_JEMALLOC_ENV, _JEMALLOC_CONF)
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl has no mallopt)
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_ARENA_MAX, ARENAS) == 1
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and ok)
    return False
