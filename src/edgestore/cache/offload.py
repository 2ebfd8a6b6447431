"""The one thread the cache's off-loop work runs on (compression, decompression, decoding).

``asyncio.to_thread`` spreads that work over the default executor's threads (up to six
here), and each thread then builds zstd contexts of its own (``edgestore.cache.codec`` keeps
them per thread) and, with glibc, allocates from an arena of its own. A 25 MiB cache written
from many tasks grew RSS to ~1.35x its cap that way; on one thread the contexts and the
allocator's free lists are shared (bench/bench_cache_rss.py). zstd releases the GIL, so one
thread next to the event loop still uses the second core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["offload"]

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(1, thread_name_prefix="edgestore-cache")
    return _executor


async def offload(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await offload(fn, ...)``: run ``fn`` on the cache's thread (like ``to_thread``)."""
    loop = asyncio.get_running_loop()
    if kwargs:
        return await loop.run_in_executor(_pool(), lambda: fn(*args, **kwargs))
    return await loop.run_in_executor(_pool(), fn, *args)
