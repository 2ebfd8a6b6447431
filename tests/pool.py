"""Checks that a store's connection pool is idle: after every way a request, stream or client
can end, nothing may keep a connection (a pinned writer or reader would stall the server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["assert_pool_idle", "eventually", "eventually_idle"]


async def assert_pool_idle(store: Any) -> None:
    """Nothing holds a connection: no busy reader, no queued write, and every connection
    closes when asked to close the idle ones (a pinned writer or reader would stay open)."""
    stats = store.pool.stats()
    assert stats.readers_busy == 0, stats
    assert stats.writes_pending == 0, stats
    await store.close_idle()
    stats = store.pool.stats()
    assert stats.connections_open == 0, stats


async def eventually_idle(store: Any) -> None:
    """The pool returns to idle within 10 s (cleanup after a disconnect runs as a task)."""
    last: AssertionError | None = None
    for _ in range(200):
        try:
            await assert_pool_idle(store)
            return
        except AssertionError as exc:
            last = exc
            await asyncio.sleep(0.05)
    raise AssertionError(f"the pool did not return to idle: {last}")


async def eventually(check: Callable[[], bool]) -> None:
    """``check()`` becomes true within 10 s."""
    for _ in range(400):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition not reached")
