"""Encoded responses of the hottest table reads, checked against the store's table versions.

The query cache holds results; turning a result into a response (parameter parsing, JSON
encoding, ETag) still costs more than the lookup itself. For ``GET`` row/page reads the
encoded body is kept here, keyed by the exact path and query string and stamped with
``store.versions.stamp({table})`` taken *before* the read ran: any write to the table (or an
external change, which moves the epoch) changes the stamp, so a stale body is never served
— the same rule, and the same guarantee, as the query cache. The middleware answers a hit
after the auth and pressure checks, before Litestar parses anything.

Entries also expire after ``MAX_AGE`` seconds so that writes by other processes, which the
store notices only when it reads, show within that bound.

Small on purpose (byte-capped, small entries only, FIFO eviction): it is a fast path for hot
keys, not a second cache tier. Off when the query cache is off.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["HOT_OPT", "MAX_AGE", "HotCache", "HotEntry"]

HOT_OPT = "edgestore_hot"
"""Route ``opt`` key: True for GET routes whose responses may be served from the HotCache."""

MAX_AGE = 0.5
"""Seconds an entry is served without SQLite being consulted. Writes through this store
invalidate at once (the stamp); a write by another process is only noticed when a read runs
and sees ``data_version`` move, so this bounds how long such a write can go unseen here."""

_ENTRY_OVERHEAD = 200  # bytes: key, tuple, dataclass and dict slot, roughly


@dataclass(frozen=True, slots=True)
class HotEntry:
    tables: frozenset[str]
    stamp: Hashable
    body: bytes
    etag: bytes
    born: float = field(default_factory=time.monotonic)


def _size(key: bytes, entry: HotEntry) -> int:
    """Bytes charged for one entry: counted the same way when it is added and removed."""
    return len(key) + len(entry.body) + _ENTRY_OVERHEAD


class HotCache:
    def __init__(self, max_bytes: int = 1 << 20, max_entry: int = 4096) -> None:
        self.max_bytes = max_bytes
        self.max_entry = max_entry
        self.bytes = 0
        self.hits = 0
        self._entries: dict[bytes, HotEntry] = {}

    def get(self, key: bytes) -> HotEntry | None:
        return self._entries.get(key)

    def drop(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= _size(key, entry)

    def put(self, key: bytes, entry: HotEntry) -> None:
        size = _size(key, entry)
        if size > self.max_entry or self.max_bytes <= 0:
            return
        self.drop(key)
        while self._entries and self.bytes + size > self.max_bytes:
            self.drop(next(iter(self._entries)))  # oldest first
        self._entries[key] = entry
        self.bytes += size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
