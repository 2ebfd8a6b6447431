"""The raw sets of :class:`~edgestore.cache.lru.CompressedLRU`: which big values stay raw.

Values of at least the compression threshold are kept raw while they are in one of two sets,
each an ``OrderedDict`` of key -> raw length in recency order:

- **recent** (``hot``): values stored or read lately, kept raw down to a recency floor
  (``maxsize // HOT_FRACTION`` bytes of raw values in all) when the cache reaches its cap;
- **frequent**: decompressing a 4 KiB value costs ~4.5 us, twenty times a bare LRU lookup, so
  a compressed value read ``PROMOTE_HITS`` times within a window (a bounded counter dict,
  cleared when it holds ``counts_max`` keys) goes back to raw here, in up to
  ``maxsize * 7 // 8`` bytes, and least recently used entries are evicted to make room for it
  rather than compressing it again. The filter is relative: under uniform access, where no
  value is much hotter than the others, few values pass it and the cache stays compressed
  (most entries held); under skewed access the hottest values are served without
  decompressing, at the price of some cold entries. The set is demoted (compressed), least
  recently used first, only when it outgrows its budget.

This class keeps the sets, their byte counts and the hit counters; the cache charges each
member ``HOT_OVERHEAD`` against its cap and does the compressing. Used under the cache's lock.
"""

from __future__ import annotations

from collections import OrderedDict

from .lru_entries import (
    FREQ_SHARE,
    FREQ_SLOT,
    FREQUENT_DEN,
    FREQUENT_NUM,
    HOT_FRACTION,
    HOT_VALUE_MAX,
    PROMOTE_HITS,
    PROMOTE_HITS_FULL,
    Key,
)

__all__ = ["RawSets"]


class RawSets:
    """The recent and frequent raw sets, and the hit counts that promote to the latter."""

    __slots__ = (
        "counts",
        "counts_max",
        "floor",
        "frequent",
        "frequent_bytes",
        "frequent_max",
        "hot",
        "hot_bytes",
    )

    def __init__(self, maxsize: int) -> None:
        self.hot: OrderedDict[Key, int] = OrderedDict()
        self.hot_bytes = 0
        self.frequent: OrderedDict[Key, int] = OrderedDict()
        self.frequent_bytes = 0
        self.counts: dict[Key, int] = {}  # compressed hits per key in the current window
        self.set_budgets(maxsize)

    def set_budgets(self, maxsize: int) -> None:
        self.floor = maxsize // HOT_FRACTION
        self.frequent_max = maxsize * FREQUENT_NUM // FREQUENT_DEN
        self.counts_max = max(16, maxsize // (FREQ_SLOT * FREQ_SHARE))
        if len(self.counts) > self.counts_max:
            self.counts.clear()

    def touch(self, key: Key) -> None:
        """Mark a raw value recently used in its set."""
        if key in self.frequent:
            self.frequent.move_to_end(key)
        elif key in self.hot:
            self.hot.move_to_end(key)

    def count_hit(self, key: Key, frame: bytes) -> bool:
        """Count a hit on a compressed value; True when it should go back to raw."""
        counts = self.counts
        n = counts.get(key, 0) + 1
        if n >= PROMOTE_HITS and len(frame) < HOT_VALUE_MAX:
            full = self.frequent_bytes + 4 * len(frame) > self.frequent_max
            if n >= PROMOTE_HITS_FULL or not full:
                del counts[key]
                return True
        if len(counts) >= self.counts_max:
            counts.clear()  # end of the window: counts start again
        counts[key] = n
        return False

    def add_hot(self, key: Key, n: int) -> None:
        self.hot[key] = n
        self.hot_bytes += n

    def add_frequent(self, key: Key, n: int) -> None:
        self.frequent[key] = n
        self.frequent_bytes += n

    def rewrite(self, key: Key, n: int, delta: int) -> bool:
        """``key``'s raw value was replaced by one of ``n`` bytes (``delta`` more); False if
        it was in neither set (it joins the recent one: the caller charges the slot)."""
        if key in self.frequent:
            self.frequent[key] = n
            self.frequent.move_to_end(key)
            self.frequent_bytes += delta
            return True
        if key in self.hot:
            self.hot[key] = n
            self.hot.move_to_end(key)
            self.hot_bytes += delta
            return True
        self.add_hot(key, n)
        return False

    def discard(self, key: Key) -> bool:
        """Take ``key`` out of its set; True if it was in one (the caller frees the slot)."""
        n = self.hot.pop(key, None)
        if n is not None:
            self.hot_bytes -= n
            return True
        n = self.frequent.pop(key, None)
        if n is not None:
            self.frequent_bytes -= n
            return True
        return False

    def next_demotion(self) -> Key | None:
        """The raw value to compress next to get under the cap, taken out of its set; None
        when none should be (the cache evicts instead)."""
        if self.hot and self.hot_bytes + self.frequent_bytes > self.floor:
            key, n = self.hot.popitem(last=False)
            self.hot_bytes -= n
            return key
        if self.frequent and self.frequent_bytes > self.frequent_max:
            key, n = self.frequent.popitem(last=False)
            self.frequent_bytes -= n
            return key
        return None

    def clear(self) -> None:
        self.hot.clear()
        self.frequent.clear()
        self.counts.clear()
        self.hot_bytes = self.frequent_bytes = 0
