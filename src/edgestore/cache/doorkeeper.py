"""Query-cache admission: whether a read uses the cache at all, and whether a miss fills it.

Three decisions, all about whether to *use* the cache, never about what an entry is worth
(freshness is checked the same way whatever they decide). Measured on random primary-key
reads over 100,000 rows (bench/bench_storage.py ``miss``), where SQLite answers in ~5-8 us:

1. **Bypass.** A lookup that misses costs ~3 us (external-write check, version stamp, byte
   key, two tiers), a hit saves ~5 us: below a hit ratio of about a third the cache costs
   more than it saves. Every ``WINDOW`` counted reads the doorkeeper compares the hits of the
   window (``QueryCache.hits``) with its reads; under ``1 / BYPASS_BELOW`` of them for
   ``BYPASS_AFTER`` windows in a row, only one read in ``BYPASS_SAMPLE`` goes through the
   cache (to keep measuring, and to let a working set that forms get in) and the others read
   SQLite straight away, for ~0.1 us. Uniform random keys over the table cost 1.4-1.6x
   ``cache=False`` without it (hit ratio 16-20%), and every read of distinct keys paid the
   doorkeeper below.
2. **First sightings** (a TinyLFU-style doorkeeper). When most reads are of keys never seen
   before, a key is only looked up and cached from its second access on: filling costs a read
   ~2.3x one with ``cache=False`` (building the byte key, the lookup, encoding the result,
   inserting it, the single-flight bookkeeping).
3. **A full cache** (:meth:`QueryCache.worth_filling` asks :func:`sampled`). Once the cache is
   at its cap, every fill evicts another entry. Under uniform random traffic over a table
   larger than the cache no key is worth more than the one it evicts: filling every miss made
   the default settings cost 2.8x ``cache=False`` while the hit rate stayed what a cache that
   never changes gives. So, full, one miss in ``FULL_FILL_EVERY`` fills: the content still
   follows a working set that moves (a key read often gets in after a few dozen reads, and LRU
   keeps it); the churn stops.

The doorkeeper is a Bloom filter of two bits a key (the second in the same 64-byte block: one
cache line), from one hash of ``(sql, params, max_rows)``, cleared after ``RESET_AFTER`` first
sightings so that it forgets old keys. A false positive admits a key early, i.e. costs a fill:
one bit a key in 128 KiB (before) let ~5% of the distinct keys of the bench fill (~1 us a read
on average), two bits of one byte ~0.3% after 10,000 keys; this layout ~0.02%. It turns strict
only while the traffic is mostly new keys (over half of a window's reads), so a working set
that repeats (the common case, and every small one) is cached from its first access.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "BYPASS_AFTER",
    "BYPASS_BELOW",
    "BYPASS_SAMPLE",
    "FULL_FILL_EVERY",
    "RESET_AFTER",
    "WINDOW",
    "Doorkeeper",
    "sampled",
]

_BYTES = 1 << 18
_MASK = _BYTES - 1
RESET_AFTER = 1 << 16
"""First sightings after which the filter is cleared (~6% of the bits set)."""
WINDOW = 256
"""Counted reads per decision (strict, bypass) for the next window; bypassing, a quarter of
that (``BYPASS_SAMPLE * WINDOW // 4`` reads: a working set that forms is noticed sooner)."""
BYPASS_BELOW = 4
"""Bypass the cache while fewer than one counted read in this many was a hit ..."""
BYPASS_AFTER = 4
"""... for this many windows in a row: bypassing also stops the lookups of keys seen before, so
it waits for more evidence than strictness does (a first sighting only delays one fill)."""
BYPASS_SAMPLE = 16
"""Bypassing, one read in this many still goes through the cache."""
FULL_FILL_EVERY = 32
"""A full cache fills one miss in this many (chosen at random, see the module docstring)."""

_random = random.random
_SAMPLE = 1.0 / FULL_FILL_EVERY


def sampled() -> bool:
    """True for one call in ``FULL_FILL_EVERY``, at random (no pattern of keys can dodge it)."""
    return _random() < _SAMPLE


def _no_hits() -> int:
    return 0


class Doorkeeper:
    """Remembers (approximately) which reads were seen, whether most reads are new, and
    whether the cache pays for its lookups."""

    __slots__ = (
        "_admitted",
        "_bits",
        "_hits",
        "_low_windows",
        "_reads",
        "_reset_at",
        "_skip",
        "_window",
        "_window_hits",
        "_window_start",
        "bypass",
        "bypassed",
        "firsts",
        "resets",
        "strict",
    )

    def __init__(self, hits: Callable[[], int] = _no_hits) -> None:
        self._bits = bytearray(_BYTES)
        self._hits = hits  # the cache's hit counter, read once a window
        # One running count of first sightings serves the window's share, the reset and the
        # turned-away figure (three counters cost ~0.05 us more on each turned-away read).
        self.firsts = 0
        """Reads of keys not seen before (since the doorkeeper was made)."""
        self._admitted = 0  # first sightings let in while not strict
        self._window_start = 0  # ``firsts`` when the current window began
        self._window_hits = 0  # ``hits()`` then
        self._low_windows = 0  # windows in a row with too few hits
        self._reset_at = RESET_AFTER
        self._reads = 0
        self._window = WINDOW
        self._skip = 0
        self.strict = False
        """True while the last window was mostly first sightings: those skip the cache."""
        self.bypass = False
        """True while the cache did not pay for its lookups: most reads skip it."""
        self.bypassed = 0
        """Reads that skipped the cache while bypassing."""
        self.resets = 0

    @property
    def turned_away(self) -> int:
        """Reads that skipped the cache as a first sighting (counted as query-cache misses)."""
        return self.firsts - self._admitted

    def admit(self, sql: str, params: Any, max_rows: int | None, always_ask: bool = False) -> bool:
        """False when this read should skip the cache: bypassing, or strict and the key's
        first sighting.

        ``StoreCache.admit`` is this method (``Store.query`` calls it before anything else).
        Not strict, it answers True at once unless ``always_ask`` (``StoreCache.hit`` asks
        after the decoded tier, so that the read is still remembered and counted). A bypassed
        read costs ~0.1 us here; a turned-away one ~0.45 us (micro-benchmark on the loaded
        2-core bench host), about what the ``fast_key`` tuple and the one-bit filter cost
        before: what made a miss cheap is fewer false "seen" keys and the bypass.
        """
        if not always_ask:
            if self.bypass:
                skip = self._skip
                if skip:
                    self._skip = skip - 1
                    self.bypassed += 1
                    return False
                self._skip = BYPASS_SAMPLE - 1
            if not self.strict:
                return True
        # Approximate on purpose: 1 and 1.0 hash alike, a Mapping's items are hashed as they
        # come; a collision only admits a read early. Unhashable parameters (a bytearray, a
        # wrong type) go through the cache, which checks them.
        try:
            if type(params) is list or type(params) is tuple:
                h = hash((sql, tuple(params), max_rows))
            elif params is None:
                h = hash((sql, max_rows))
            elif isinstance(params, Mapping):
                h = hash((sql, tuple(params.items()), max_rows))
            else:
                return True
        except TypeError:
            return True
        reads = self._reads + 1
        if reads < self._window:
            self._reads = reads
        else:
            self._decide(reads)
        bits = self._bits
        index = h & _MASK
        bit = 1 << ((h >> 18) & 7)
        if bits[index] & bit:
            other = index ^ ((h >> 21) & 63)
            other_bit = 1 << ((h >> 27) & 7)
            if bits[other] & other_bit:
                return True
            bits[other] |= other_bit
        else:
            bits[index] |= bit
            bits[index ^ ((h >> 21) & 63)] |= 1 << ((h >> 27) & 7)
        firsts = self.firsts + 1
        self.firsts = firsts
        if firsts >= self._reset_at:
            self._bits = bytearray(_BYTES)
            self._reset_at = firsts + RESET_AFTER
            self.resets += 1
        if self.strict:
            return False
        self._admitted += 1
        return True

    def _decide(self, reads: int) -> None:
        """End of a window of ``reads`` counted reads: strict and bypass for the next one."""
        firsts = self.firsts
        self.strict = (firsts - self._window_start) * 2 > reads
        self._window_start = firsts
        hits = self._hits()
        low = (hits - self._window_hits) * BYPASS_BELOW < reads
        self._low_windows = low_windows = self._low_windows + 1 if low else 0
        self.bypass = bypass = low_windows >= BYPASS_AFTER
        self._window = WINDOW // 4 if bypass else WINDOW
        self._window_hits = hits
        self._reads = 0
