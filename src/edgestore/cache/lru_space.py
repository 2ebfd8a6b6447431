"""The space side of :class:`~edgestore.cache.lru.CompressedLRU`: entries within a byte cap.

:class:`CappedEntries` holds the entries (a ``cachetools.LRUCache`` counting entries, not
bytes), charges each one against the cap, and gets back under the cap when a write or a side
tier passes it: compress raw values first, then evict. ``CompressedLRU`` (lru.py) builds the
cache's API (reads, writes, maintenance, figures) on it.

Memory accounting. The charge of an entry is what it really holds: the stored bytes object
(header included), the key object, and the bookkeeping of ``cachetools.LRUCache`` (its data
dict and its OrderedDict of recency) -- ``ENTRY_OVERHEAD``, measured with tracemalloc on
CPython 3.11 and re-measured by tests/cache/test_memory_bound.py. cachetools counts entries
here (no ``getsizeof``): its per-entry size dict would cost ~70 more bytes per entry, so the
byte budget is enforced by this class, evicting through ``LRUCache.popitem``. Lookups and
in-place replacements read cachetools' data dict and recency OrderedDict directly (their
names are stable since cachetools 4; going through its Python-level ``__getitem__`` costs
more than the lookup itself); inserts, evictions and removals use its API.

Compression. Values of at least the compression threshold are compressed when memory asks for
it, not on arrival: while the cache is under its cap they stay raw; when it reaches the cap,
the least recently used raw values are compressed before anything is evicted, down to a
recency floor (``maxsize // HOT_FRACTION`` bytes) that stays raw (the raw sets: lru_raw.py).
Compression and decompression run outside the lock except for demoting a (small) raw value.
TTL entries expire through a heap (lru_expiry.py).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable

import cachetools

from .codec import Codec, UnknownDictionary
from .lru_entries import (
    HOT_OVERHEAD,
    Entry,
    Key,
    SideTier,
    Stored,
    Z,
    peek,
    peek_or_none,
    raw_len,
    replace_value,
    size_of,
)
from .lru_expiry import ExpiryHeap
from .lru_raw import RawSets

__all__ = ["CappedEntries"]


class CappedEntries:
    """Entries charged against ``maxsize`` bytes; the base of ``CompressedLRU``.

    Every method here expects the caller to hold ``_lock``, except :meth:`_decompress` and
    :meth:`_promote`, which take it themselves (decompressing runs outside it).
    """

    def __init__(self, maxsize: int, timer: Callable[[], float], codec: Codec) -> None:
        self._lock = threading.Lock()
        self._timer = timer
        self._maxsize = maxsize
        self._bytes = 0
        self.codec = codec
        self._lru: cachetools.LRUCache[Key, Stored] = cachetools.LRUCache(sys.maxsize)
        # The hot paths read cachetools' own dict and recency OrderedDict directly: going
        # through its Python-level __getitem__/__contains__ costs more than the whole lookup.
        # Inserts, evictions (popitem) and removals still go through cachetools.
        self._data: dict[Key, Stored] = self._lru._Cache__data  # type: ignore[attr-defined]
        self._order: OrderedDict[Key, None] = self._lru._LRUCache__order  # type: ignore[attr-defined]
        # Raw values of at least the threshold (lru_raw.py). The hot paths touch the two sets
        # through these names, bound once (the sets are never replaced).
        self._raw = RawSets(maxsize)
        self._hot = self._raw.hot
        self._frequent = self._raw.frequent
        self._freq = self._raw.counts
        self._tiers: list[SideTier] = []
        self._side_bytes = 0
        self._expiry = ExpiryHeap()
        self._heap = self._expiry.heap  # checked inline on every write
        self._value_bytes = 0  # logical (uncompressed) bytes of the values held
        self._stored_bytes = 0  # bytes of their stored forms
        self._compressed_entries = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self.compressions = 0
        self.promotions = 0

    def _expire(self, key: Key, v: Entry) -> None:
        """Drop an entry a read found expired: an expiration and a miss (lock held)."""
        self._remove(key, v)
        self.expirations += 1
        self.misses += 1

    def _replace_raw(self, key: Key, old: bytes, value: bytes) -> None:
        """Replace a raw value of at least ``threshold`` bytes by another one (lock held)."""
        d = len(value) - len(old)
        self._data[key] = value
        self._order.move_to_end(key)
        self._bytes += d
        self._stored_bytes += d
        self._value_bytes += d
        if not self._raw.rewrite(key, len(value), d):
            self._bytes += HOT_OVERHEAD  # the old value did not compress: it was in no raw set

    @property
    def _hot_bytes(self) -> int:
        return self._raw.hot_bytes

    @property
    def _frequent_bytes(self) -> int:
        return self._raw.frequent_bytes

    def _decompress(self, key: Key, frame: bytes) -> bytes | None:
        try:
            return self.codec.decompress(frame)
        except UnknownDictionary:
            # Written with a dictionary unloaded since: as good as evicted.
            with self._lock:
                v = peek_or_none(self._lru, key)
                if v is not None and (v is frame or (type(v) is Entry and v.data is frame)):
                    self._remove(key, v)
                    self.evictions += 1
                self.hits -= 1
                self.misses += 1
            return None

    def _promote(self, key: Key, frame: bytes, raw: bytes) -> None:
        """Store a frequently read value raw again, in the frequent set."""
        with self._lock:
            v = peek_or_none(self._lru, key)
            if v is None or (v is not frame and (type(v) is not Entry or v.data is not frame)):
                return  # replaced or removed meanwhile
            new: Stored = raw if type(v) is not Entry else Entry(raw, v.expires)
            self._account(key, v, -1)
            replace_value(self._lru, key, new)
            self._account(key, new, 1)
            self._raw.add_frequent(key, len(raw))
            self._bytes += HOT_OVERHEAD
            self.promotions += 1
            if self._bytes > self._maxsize:
                self._make_room()

    def _demote(self, key: Key) -> None:
        """Compress a value just taken out of its raw set (lock held)."""
        self._bytes -= HOT_OVERHEAD
        lru = self._lru
        v = peek(lru, key)
        raw = v.data if type(v) is Entry else v
        assert type(raw) is bytes
        frame = self.codec.compress(raw)
        if frame is None:
            return  # does not compress: stays raw, no longer a candidate
        self.compressions += 1
        new: Stored = Z(frame) if type(v) is not Entry else Entry(Z(frame), v.expires)
        self._account(key, v, -1)
        replace_value(lru, key, new)
        self._account(key, new, 1)

    def _account(self, key: Key, v: Stored, sign: int) -> None:
        self._bytes += sign * size_of(key, v)
        data = v.data if type(v) is Entry else v
        assert isinstance(data, bytes)
        self._stored_bytes += sign * len(data)
        self._value_bytes += sign * raw_len(data)
        if type(data) is Z:
            self._compressed_entries += sign
        if type(v) is Entry:
            self._expiry.entries += sign

    def _make_room(self) -> None:
        """Get back under the cap: compress raw values first, then evict (lock held).

        Recent raw values are compressed, least recently used first, only when the cap is
        reached, and only down to the floor (``maxsize // HOT_FRACTION`` raw bytes in all); the
        frequent set is compressed only beyond its own budget; after that, the least recently
        used entries are evicted.
        """
        lru = self._lru
        while self._bytes > self._maxsize:
            demote = self._raw.next_demotion()
            if demote is not None:
                self._demote(demote)
                continue
            if not len(lru):
                break
            key, v = lru.popitem()
            self._forget(key, v)
            self.evictions += 1

    def _forget(self, key: Key, v: Stored) -> None:
        self._account(key, v, -1)
        if self._raw.discard(key):
            self._bytes -= HOT_OVERHEAD

    def _remove(self, key: Key, v: Stored) -> None:
        del self._lru[key]
        self._forget(key, v)

    def _purge(self, now: float) -> None:
        lru = self._lru
        for expires, key in self._expiry.due(now):
            v = peek_or_none(lru, key)
            # The heap may hold stale items for keys replaced or removed since.
            if type(v) is Entry and v.expires == expires:
                self._remove(key, v)
                self.expirations += 1

    def _rebuild_heap(self) -> None:
        lru = self._lru
        live = ((v.expires, k) for k in lru if type(v := peek(lru, k)) is Entry)
        self._expiry.rebuild(live)
