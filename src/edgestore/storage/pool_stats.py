"""``Pool.stats()``: a snapshot of the connection pool."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolStats"]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool's state and counters since the store opened."""

    writer_open: bool
    readers_open: int
    readers_busy: int
    connections_open: int
    max_connections: int
    peak_connections: int
    waits: int
    timeouts: int
    opens: int
    closes: int
    idle_closes: int
    inline_runs: int
    inline_overruns: int
    thread_runs: int
    group_commits: int
    grouped_writes: int
    writes_pending: int
    writer_busy: bool = False
    """The writer is held (a hold, or a group commit running)."""
