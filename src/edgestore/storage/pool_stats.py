"""``Pool.stats()``: a snapshot of the connection pool."""

from __future__ import annotations

import msgspec

__all__ = ["PoolStats"]


class PoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the pool's state; the counters count since the store opened.

    A frozen ``msgspec.Struct`` like every stats object of the core: the web layer renders it
    as it is (``/health/ready``'s ``pool``), and its field names are the JSON keys.
    """

    writer_open: bool
    readers_open: int
    """Reader connections open (busy or idle)."""
    readers_busy: int
    """Reader connections running a statement now."""
    connections_open: int
    """SQLite connections open, the writer included."""
    max_connections: int
    """Most SQLite connections the pool opens (1 writer + max_readers)."""
    peak_connections: int
    waits: int
    """Times a read waited for a reader."""
    timeouts: int
    """Waits for a connection that timed out."""
    opens: int
    closes: int
    idle_closes: int
    """Connections closed after ``idle_timeout`` seconds unused."""
    inline_runs: int
    """Statements run on the event loop (short reads)."""
    inline_overruns: int
    thread_runs: int
    """Statements run on a pool thread."""
    group_commits: int
    """Transactions that held several writes."""
    grouped_writes: int
    """Writes acknowledged through group commits."""
    writes_pending: int
    """Writes queued for the writer now."""
    writer_busy: bool = False
    """The writer is held (a hold, or a group commit running)."""
