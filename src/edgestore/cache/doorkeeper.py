"""Query-cache admission: when most reads are of keys never seen before, a key is only
looked up and cached from its second access on (a TinyLFU-style doorkeeper).

Filling the cache is the expensive half of a miss: building the byte key, the lookup,
encoding the result, inserting it (evicting another entry once the cache is full) and the
single-flight bookkeeping. Measured on random primary-key reads (bench/bench_storage.py
``point``: 2.1x the cost of ``cache=False``; bench/bench_reads.py over 100,000 rows), filling on
every miss doubled the cost of a read, and on a table larger than the cache most of those
entries were evicted unread.

Which keys were seen is one bitmap indexed by the key's hash (one bit a key, 128 KiB), cleared
after ``RESET_AFTER`` first sightings so that it forgets old keys (false positives only admit a
key early). The doorkeeper only turns strict while the traffic is mostly new keys: every
``WINDOW`` reads it looks at the share of first sightings, so a working set that repeats
(the common case, and every small one) is cached from its first access as before. Freshness is
untouched either way: this decides whether to use the cache, never what an entry is worth.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["RESET_AFTER", "WINDOW", "Doorkeeper"]

_BITS = 1 << 20
_MASK = _BITS - 1
RESET_AFTER = _BITS // 4
"""First sightings after which the bitmap is cleared (at most ~25% false positives)."""
WINDOW = 256
"""Reads per decision: strict for the next window when over half of these were new keys."""


class Doorkeeper:
    """Remembers (approximately) which keys were seen, and whether most reads are new."""

    __slots__ = ("_bits", "_count", "_firsts", "_reads", "resets", "strict", "turned_away")

    def __init__(self) -> None:
        self._bits = bytearray(_BITS // 8)
        self._count = 0
        self._reads = 0
        self._firsts = 0
        self.strict = False
        """True while the last window was mostly first sightings: those skip the cache."""
        self.resets = 0
        self.turned_away = 0
        """Reads that skipped the cache as a first sighting (for stats)."""

    def admit(self, key: Hashable) -> bool:
        """False when ``key`` is seen for the first time and the doorkeeper is strict."""
        self._reads += 1
        if self._reads >= WINDOW:
            self.strict = self._firsts * 2 > self._reads
            self._reads = self._firsts = 0
        index = hash(key) & _MASK
        byte = index >> 3
        bit = 1 << (index & 7)
        bits = self._bits
        if bits[byte] & bit:
            return True
        bits[byte] |= bit
        self._firsts += 1
        self._count += 1
        if self._count >= RESET_AFTER:
            self._bits = bytearray(_BITS // 8)
            self._count = 0
            self.resets += 1
        if self.strict:
            self.turned_away += 1
            return False
        return True
