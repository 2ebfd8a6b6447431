"""The expiry heap of :class:`~edgestore.cache.lru.CompressedLRU`: when TTL entries run out.

A heap of ``(expires, key)``; replacing or removing an entry leaves its tuple behind (cheaper
than finding it), so the cache checks a popped tuple against the live entry, and the heap is
rebuilt from the live entries once stale tuples outnumber them. Used under the cache's lock.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from .lru_entries import Key

__all__ = ["ExpiryHeap"]


class ExpiryHeap:
    """``(expires, key)`` of the entries with a TTL, soonest first."""

    __slots__ = ("entries", "heap")

    def __init__(self) -> None:
        self.heap: list[tuple[float, Key]] = []
        """The heap itself (the cache checks ``heap[0]`` inline on every write)."""
        self.entries = 0
        """Live entries with a TTL (the cache counts them in and out)."""

    def push(self, expires: float, key: Key) -> bool:
        """Add an entry; True when stale tuples pile up and :meth:`rebuild` is due."""
        heapq.heappush(self.heap, (expires, key))
        return len(self.heap) > 2 * self.entries + 64

    def due(self, now: float) -> Iterator[tuple[float, Key]]:
        """Pop every tuple whose time has come (some may be stale: the caller checks)."""
        heap = self.heap
        while heap and heap[0][0] <= now:
            yield heapq.heappop(heap)

    def rebuild(self, live: Iterable[tuple[float, Key]]) -> None:
        """Keep only the live entries' tuples (in place: the cache holds the list)."""
        self.heap[:] = live
        heapq.heapify(self.heap)

    def clear(self) -> None:
        self.heap.clear()
        self.entries = 0
