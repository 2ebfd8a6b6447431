"""CompressedLRU: a byte-capped, thread-safe LRU of bytes values on cachetools, zstd inside.

Memory accounting. The charge of an entry is what it really holds: the stored bytes object
(header included), the key object, and the bookkeeping of ``cachetools.LRUCache`` (its data
dict and its OrderedDict of recency) -- ``ENTRY_OVERHEAD``, measured with tracemalloc on
CPython 3.11 and re-measured by tests/cache/test_memory_bound.py. cachetools counts entries
here (no ``getsizeof``): its per-entry size dict would cost ~70 more bytes per entry, so the
byte budget is enforced by this class, evicting through ``LRUCache.popitem``. Lookups and
in-place replacements read cachetools' data dict and recency OrderedDict directly (their
names are stable since cachetools 4; going through its Python-level ``__getitem__`` costs
more than the lookup itself); inserts, evictions and removals use its API.

Compression. Values of at least ``compress_threshold`` bytes are compressed when memory asks
for it, not on arrival: while the cache is under its cap they stay raw; when it reaches the cap,
the least recently used raw values are compressed before anything is evicted, down to a
recency floor (``maxsize // HOT_FRACTION`` bytes) that stays raw. Values of 16 KiB or more are
compressed when stored, by :meth:`prepare`, which async callers run on a thread. Compression
and decompression run outside the lock except for demoting a (small) raw value.

Frequent values. Decompressing a 4 KiB value costs ~4.5 us, twenty times a bare LRU lookup,
so values that are read often are kept raw in a second raw set of up to
``maxsize * 7 // 8`` bytes: a compressed value read ``PROMOTE_HITS`` times within
a window (a bounded counter dict, cleared when it holds ``_freq_max`` keys) goes back to raw
there, and least recently used entries are evicted to make room for it rather than compressing
it again. The filter is relative: under uniform access, where no value is much hotter than the
others, few values pass it and the cache stays compressed (most entries held); under skewed
access the hottest values are served without decompressing, at the price of some cold
entries. That set is demoted (compressed), least recently used first, only when it outgrows its
budget.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

import cachetools

from ..errors import ValueTooLarge
from .codec import Codec, UnknownDictionary
from .lru_entries import (
    BYTES_HEADER,
    ENTRY_OVERHEAD,
    FREQ_SHARE,
    FREQ_SLOT,
    FREQUENT_DEN,
    FREQUENT_NUM,
    HOT_FRACTION,
    HOT_OVERHEAD,
    HOT_VALUE_MAX,
    PROMOTE_HITS,
    PROMOTE_HITS_FULL,
    SIDE_FRACTION,
    TTL_OVERHEAD,
    Z_HEADER,
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
from .stats import CompressionStats, LRUStats

__all__ = [
    "ENTRY_OVERHEAD",
    "HOT_OVERHEAD",
    "HOT_VALUE_MAX",
    "PROMOTE_HITS",
    "SIDE_FRACTION",
    "TTL_OVERHEAD",
    "CompressedLRU",
    "Key",
    "SideTier",
]


def _exact(value: bytes) -> bytes:
    """``value`` in an allocation of its own size.

    Encoders hand back buffers with spare capacity (msgspec grows its buffer by half and keeps
    the slack: a 1 KB value can sit in 1.4 KB), which the charge, ``len`` based, never sees; a
    value kept in the cache for long is worth one copy so the cap bounds what it really holds.
    """
    return bytes(memoryview(value))


class CompressedLRU:
    """Byte-capped LRU cache of ``bytes`` values, keyed by ``str`` or ``bytes``.

    Values of at least ``compress_threshold`` bytes are kept zstd-compressed (at ``level``, with
    a trained dictionary when ``dictionary`` is true) once they leave the raw sets. A value whose
    entry alone would not fit in ``maxsize`` raises :class:`~edgestore.errors.ValueTooLarge` and
    leaves the cache as it was. ``ttl`` (seconds) bounds an entry's life; ``timer`` is
    injectable so that tests control time.
    """

    def __init__(
        self,
        maxsize: int,
        *,
        compress_threshold: int = 1024,
        level: int = 1,
        dictionary: bool = True,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        self._lock = threading.Lock()
        self._timer = timer
        self._maxsize = maxsize
        self._bytes = 0
        self.threshold = compress_threshold
        self.codec = Codec(
            level=level,
            dictionary=dictionary,
            sample_budget=max(64 * 1024, min(1024 * 1024, maxsize // 32)),
        )
        self._lru: cachetools.LRUCache[Key, Stored] = cachetools.LRUCache(sys.maxsize)
        # The hot paths read cachetools' own dict and recency OrderedDict directly: going
        # through its Python-level __getitem__/__contains__ costs more than the whole lookup.
        # Inserts, evictions (popitem) and removals still go through cachetools.
        self._data: dict[Key, Stored] = self._lru._Cache__data  # type: ignore[attr-defined]
        self._order: OrderedDict[Key, None] = self._lru._LRUCache__order  # type: ignore[attr-defined]
        # Raw values of at least ``threshold`` bytes, key -> raw length, in recency order: the
        # recent ones (kept raw down to the floor) and the frequent ones (kept raw up to their
        # own budget).
        self._hot: OrderedDict[Key, int] = OrderedDict()
        self._hot_bytes = 0
        self._frequent: OrderedDict[Key, int] = OrderedDict()
        self._frequent_bytes = 0
        self._freq: dict[Key, int] = {}  # compressed hits per key in the current window
        self._tiers: list[SideTier] = []
        self._side_bytes = 0
        self._set_budgets(maxsize)
        self._heap: list[tuple[float, Key]] = []
        self._ttl_entries = 0
        self._value_bytes = 0  # logical (uncompressed) bytes of the values held
        self._stored_bytes = 0  # bytes of their stored forms
        self._compressed_entries = 0
        self.hits = 0
        self.misses = 0
        self.sets = 0
        self.evictions = 0
        self.expirations = 0
        self.rejections = 0
        self.deletes = 0
        self.compressions = 0
        self.promotions = 0

    # --- reading ----------------------------------------------------------------------

    def get(self, key: Key, default: bytes | None = None) -> bytes | None:
        """The value for ``key`` (marked recently used), or ``default``."""
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return default
            self._order.move_to_end(key)
            if type(v) is bytes:
                self.hits += 1
                if len(v) >= self.threshold:
                    # _touch_raw inlined: this is the hottest path
                    frequent = self._frequent
                    if key in frequent:
                        frequent.move_to_end(key)
                    elif key in self._hot:
                        self._hot.move_to_end(key)
                return v
            if type(v) is Entry:
                if v.expires <= self._timer():
                    self._expire(key, v)
                    return default
                data = v.data
                if type(data) is not Z:
                    self.hits += 1
                    self._touch_raw(key)
                    return data
            else:
                assert type(v) is Z
                data = v
            self.hits += 1
            promote = self._count_hit(key, data)
        out = self._decompress(key, data)
        if out is not None and promote:
            self._promote(key, data, out)
        return out if out is not None else default

    def _expire(self, key: Key, v: Entry) -> None:
        """Drop an entry a read found expired: an expiration and a miss (lock held)."""
        self._remove(key, v)
        self.expirations += 1
        self.misses += 1

    def _touch_raw(self, key: Key) -> None:
        """Mark a raw value recently used in its raw set (lock held)."""
        if key in self._frequent:
            self._frequent.move_to_end(key)
        elif key in self._hot:
            self._hot.move_to_end(key)

    def _count_hit(self, key: Key, frame: bytes) -> bool:
        """Count a hit on a compressed value; True when it should go back to raw (lock held)."""
        freq = self._freq
        n = freq.get(key, 0) + 1
        if n >= PROMOTE_HITS and len(frame) < HOT_VALUE_MAX:
            full = self._frequent_bytes + 4 * len(frame) > self._frequent_max
            if n >= PROMOTE_HITS_FULL or not full:
                del freq[key]
                return True
        if len(freq) >= self._freq_max:
            freq.clear()  # end of the window: counts start again
        freq[key] = n
        return False

    def peek_stored(self, key: Key) -> bytes | None:
        """Like :meth:`get`, but a compressed value comes back still compressed.

        Pair with :meth:`is_compressed` / :meth:`decompress` to decompress big values off the
        event loop.
        """
        with self._lock:
            v = self._data.get(key)
            if v is None:
                self.misses += 1
                return None
            self._order.move_to_end(key)
            if type(v) is Entry:
                if v.expires <= self._timer():
                    self._expire(key, v)
                    return None
                self.hits += 1
                return v.data
            if type(v) is bytes and len(v) >= self.threshold:
                self._touch_raw(key)
            self.hits += 1
            assert isinstance(v, bytes)
            return v

    @staticmethod
    def is_compressed(stored: bytes) -> bool:
        return type(stored) is Z

    def decompress(self, key: Key, stored: bytes) -> bytes | None:
        """Decompress what :meth:`peek_stored` returned (None: the entry became unreadable).

        Counts as a read of a compressed value: a frequent one goes back to raw.
        """
        if type(stored) is not Z:
            return stored
        with self._lock:
            promote = self._count_hit(key, stored)
        out = self._decompress(key, stored)
        if out is not None and promote:
            self._promote(key, stored, out)
        return out

    def __contains__(self, key: object) -> bool:
        """Presence of a live entry, without touching the recency order or the counters."""
        if not isinstance(key, str | bytes):
            return False
        with self._lock:
            try:
                v = peek(self._lru, key)
            except KeyError:
                return False
            return not (type(v) is Entry and v.expires <= self._timer())

    def __len__(self) -> int:
        return len(self._lru)

    def keys(self) -> list[Key]:
        """A snapshot of the keys."""
        with self._lock:
            return list(self._lru)

    def __iter__(self) -> Iterator[Key]:
        """Iterate over a snapshot of the keys."""
        return iter(self.keys())

    # --- writing ----------------------------------------------------------------------

    def prepare(self, value: bytes) -> bytes:
        """Compress a value that is too big for the hot set (thread-safe, no cache lock).

        :meth:`set` does this itself; async callers run it on a thread for big values and
        pass the result to :meth:`set`.
        """
        if type(value) is not bytes:
            if type(value) is Z:
                return value
            value = bytes(value)
        if len(value) >= HOT_VALUE_MAX and len(value) >= self.threshold:
            frame = self.codec.compress(value)
            if frame is not None:
                self.compressions += 1
                return Z(frame)
        return value

    def set(self, key: Key, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; raises ValueTooLarge (cache untouched) if it cannot fit at all."""
        if ttl is None and type(value) is bytes and len(value) < self.threshold:
            self._set_small(key, value)
            return
        if type(value) is not bytes or len(value) >= HOT_VALUE_MAX:
            value = self.prepare(value)
        if type(value) is bytes:
            value = _exact(value)
        n = len(value)
        size = n + BYTES_HEADER + sys.getsizeof(key) + ENTRY_OVERHEAD
        stored: Stored = value
        if type(value) is Z:
            size += Z_HEADER - BYTES_HEADER
        elif n >= self.threshold:
            size += HOT_OVERHEAD
        if ttl is not None:
            if ttl <= 0:
                raise ValueError("ttl must be > 0 seconds")
            stored = Entry(value, self._timer() + ttl)
            size += TTL_OVERHEAD + sys.getsizeof(key)
        with self._lock:
            if size > self._maxsize:
                self.rejections += 1
                raise ValueTooLarge(
                    f"a cache entry of {size} bytes does not fit in the whole cache "
                    f"({self._maxsize} bytes)"
                )
            if self._heap and self._heap[0][0] <= (now := self._timer()):
                self._purge(now)
            lru = self._lru
            old = self._data.get(key)
            if (
                type(old) is bytes
                and stored is value
                and type(value) is bytes
                and len(old) >= self.threshold
                and n >= self.threshold
            ):
                # Raw replaced by raw (a hot key rewritten): same raw set, same key charge.
                self._replace_raw(key, old, value)
                if self._bytes > self._maxsize:
                    self._make_room()
                self.sets += 1
                return
            if old is not None:
                if type(old) is bytes and len(old) < self.threshold:
                    # the common replace of a small raw value, inlined
                    n_old = len(old)
                    self._bytes -= n_old + BYTES_HEADER + sys.getsizeof(key) + ENTRY_OVERHEAD
                    self._stored_bytes -= n_old
                    self._value_bytes -= n_old
                else:
                    self._forget(key, old)
            # Assign first (the key becomes the most recent), then make room: eviction takes
            # the least recent entries, never this one, since it fits in the cap alone.
            lru[key] = stored
            self._bytes += size
            if type(value) is Z:
                self._stored_bytes += n
                self._value_bytes += raw_len(value)
                self._compressed_entries += 1
            else:
                self._stored_bytes += n
                self._value_bytes += n
                if n >= self.threshold:
                    self._hot[key] = n
                    self._hot_bytes += n
            if self._bytes > self._maxsize:
                self._make_room()
            self.sets += 1
            if ttl is not None:
                assert type(stored) is Entry
                self._ttl_entries += 1
                heapq.heappush(self._heap, (stored.expires, key))
                if len(self._heap) > 2 * self._ttl_entries + 64:
                    self._rebuild_heap()

    def _replace_raw(self, key: Key, old: bytes, value: bytes) -> None:
        """Replace a raw value of at least ``threshold`` bytes by another one (lock held)."""
        d = len(value) - len(old)
        self._data[key] = value
        self._order.move_to_end(key)
        self._bytes += d
        self._stored_bytes += d
        self._value_bytes += d
        if key in self._frequent:
            self._frequent[key] = len(value)
            self._frequent.move_to_end(key)
            self._frequent_bytes += d
        elif key in self._hot:
            self._hot[key] = len(value)
            self._hot.move_to_end(key)
            self._hot_bytes += d
        else:  # the old value did not compress: it was in no raw set
            self._hot[key] = len(value)
            self._hot_bytes += len(value)
            self._bytes += HOT_OVERHEAD

    def _set_small(self, key: Key, value: bytes) -> None:
        """:meth:`set` of a raw value below the threshold without TTL: the common case."""
        value = _exact(value)
        n = len(value)
        ksize = sys.getsizeof(key)
        size = n + ksize + (BYTES_HEADER + ENTRY_OVERHEAD)
        with self._lock:
            if size > self._maxsize:
                self.rejections += 1
                raise ValueTooLarge(
                    f"a cache entry of {size} bytes does not fit in the whole cache "
                    f"({self._maxsize} bytes)"
                )
            heap = self._heap
            if heap and heap[0][0] <= (now := self._timer()):
                self._purge(now)
            old = self._data.get(key)
            if old is None:
                self._lru[key] = value
            else:
                if type(old) is bytes and len(old) < self.threshold:
                    n_old = len(old)
                    self._bytes -= n_old + ksize + (BYTES_HEADER + ENTRY_OVERHEAD)
                    self._stored_bytes -= n_old
                    self._value_bytes -= n_old
                else:
                    self._forget(key, old)
                self._data[key] = value
                self._order.move_to_end(key)
            self._bytes += size
            self._stored_bytes += n
            self._value_bytes += n
            if self._bytes > self._maxsize:
                self._make_room()
            self.sets += 1

    def delete(self, key: Key) -> bool:
        """Remove ``key``; True if it was there."""
        with self._lock:
            try:
                v = peek(self._lru, key)
            except KeyError:
                return False
            self._remove(key, v)
            self.deletes += 1
            return True

    def delete_where(self, predicate: Callable[[Key], bool]) -> int:
        """Remove every key for which ``predicate`` is true; returns how many."""
        for tier in self._tiers:
            tier.drop_where(predicate)
        with self._lock:
            doomed = [k for k in self._lru if predicate(k)]
            for k in doomed:
                self._remove(k, peek(self._lru, k))
            self.deletes += len(doomed)
            return len(doomed)

    def clear(self) -> None:
        for tier in self._tiers:
            tier.clear()
        with self._lock:
            self._lru.clear()
            self._hot.clear()
            self._frequent.clear()
            self._freq.clear()
            self._heap.clear()
            self._hot_bytes = self._frequent_bytes = self._ttl_entries = 0
            self._bytes = self._side_bytes
            self._value_bytes = self._stored_bytes = self._compressed_entries = 0

    def expire(self) -> int:
        """Drop every expired entry now; returns how many."""
        with self._lock:
            before = self.expirations
            self._purge(self._timer())
            return self.expirations - before

    def resize(self, maxsize: int) -> None:
        """Change the byte cap; shrinking evicts least recently used entries at once."""
        if maxsize < 0:
            raise ValueError("maxsize must be >= 0")
        for tier in self._tiers:
            tier.shrink(maxsize // SIDE_FRACTION)
        with self._lock:
            self._maxsize = maxsize
            self._set_budgets(maxsize)
            self._make_room()

    def _set_budgets(self, maxsize: int) -> None:
        self._hot_floor = maxsize // HOT_FRACTION
        self._frequent_max = maxsize * FREQUENT_NUM // FREQUENT_DEN
        self._freq_max = max(16, maxsize // (FREQ_SLOT * FREQ_SHARE))
        if len(self._freq) > self._freq_max:
            self._freq.clear()

    def expiry(self, key: Key) -> float | None:
        """When ``key``'s entry expires (on :attr:`timer`'s clock); None: no TTL or no entry."""
        with self._lock:
            v = self._data.get(key)
            return v.expires if type(v) is Entry else None

    @property
    def timer(self) -> Callable[[], float]:
        return self._timer

    def attach(self, tier: SideTier) -> None:
        """Let ``tier`` charge its memory to this cache's cap (see :class:`SideTier`)."""
        self._tiers.append(tier)

    def charge(self, delta: int) -> None:
        """Add (or with a negative ``delta`` give back) bytes held by an attached tier."""
        with self._lock:
            self._bytes += delta
            self._side_bytes += delta
            if self._bytes > self._maxsize:
                self._make_room()

    # --- figures ----------------------------------------------------------------------

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @property
    def currsize(self) -> int:
        """Bytes charged for the entries held (see the module docstring)."""
        return self._bytes

    def stats(self) -> LRUStats:
        """Counters and sizes now."""
        with self._lock:
            c = self.codec.stats()
            lookups = self.hits + self.misses
            return LRUStats(
                entries=len(self._lru),
                bytes=self._bytes,
                max_bytes=self._maxsize,
                value_bytes=self._value_bytes,
                stored_bytes=self._stored_bytes,
                ratio=round(self._value_bytes / self._stored_bytes, 3)
                if self._stored_bytes
                else 1.0,
                compressed_entries=self._compressed_entries,
                hot_entries=len(self._hot) + len(self._frequent),
                hot_bytes=self._hot_bytes + self._frequent_bytes,
                side_bytes=self._side_bytes,
                frequent_entries=len(self._frequent),
                frequent_bytes=self._frequent_bytes,
                overhead_bytes=self.codec.overhead_bytes() + FREQ_SLOT * len(self._freq),
                hits=self.hits,
                misses=self.misses,
                hit_rate=round(self.hits / lookups, 4) if lookups else 0.0,
                sets=self.sets,
                evictions=self.evictions,
                expirations=self.expirations,
                rejections=self.rejections,
                deletes=self.deletes,
                compression=CompressionStats(
                    threshold=self.threshold,
                    level=self.codec.level,
                    compressions=self.compressions,
                    promotions=self.promotions,
                    ratio=c.ratio,
                    dictionary=self.codec.dictionary,
                    dictionary_id=c.dictionary_id,
                    dictionary_bytes=c.dictionary_bytes,
                    dictionaries_loaded=c.dictionaries_loaded,
                    dictionary_ratio=c.dictionary_ratio,
                    trainings=c.trainings,
                    sample_bytes=c.sample_bytes,
                ),
            )

    def audit(self) -> int:
        """Recompute the charged bytes from the entries (tests check it equals ``currsize``)."""
        with self._lock:
            total = sum(size_of(k, peek(self._lru, k)) for k in self._lru)
            raw_sets = len(self._hot) + len(self._frequent)
            return total + HOT_OVERHEAD * raw_sets + self._side_bytes

    # --- internals --------------------------------------------------------------------

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
            self._frequent[key] = len(raw)
            self._frequent_bytes += len(raw)
            self._bytes += HOT_OVERHEAD
            self.promotions += 1
            if self._bytes > self._maxsize:
                self._make_room()

    def _demote_one(self, frequent: bool = False) -> None:
        """Compress the least recently used value of a raw set (lock held)."""
        if frequent:
            key, n = self._frequent.popitem(last=False)
            self._frequent_bytes -= n
        else:
            key, n = self._hot.popitem(last=False)
            self._hot_bytes -= n
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
            self._ttl_entries += sign

    def _make_room(self) -> None:
        """Get back under the cap: compress raw values first, then evict (lock held).

        Recent raw values are compressed, least recently used first, only when the cap is
        reached, and only down to the floor (``maxsize // HOT_FRACTION`` raw bytes in all); the
        frequent set is compressed only beyond its own budget; after that, the least recently
        used entries are evicted.
        """
        lru = self._lru
        while self._bytes > self._maxsize:
            if self._hot and self._hot_bytes + self._frequent_bytes > self._hot_floor:
                self._demote_one()
                continue
            if self._frequent and self._frequent_bytes > self._frequent_max:
                self._demote_one(frequent=True)
                continue
            if not len(lru):
                break
            key, v = lru.popitem()
            self._forget(key, v)
            self.evictions += 1

    def _forget(self, key: Key, v: Stored) -> None:
        self._account(key, v, -1)
        n = self._hot.pop(key, None)
        if n is not None:
            self._hot_bytes -= n
            self._bytes -= HOT_OVERHEAD
            return
        n = self._frequent.pop(key, None)
        if n is not None:
            self._frequent_bytes -= n
            self._bytes -= HOT_OVERHEAD

    def _remove(self, key: Key, v: Stored) -> None:
        del self._lru[key]
        self._forget(key, v)

    def _purge(self, now: float) -> None:
        heap = self._heap
        lru = self._lru
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            v = peek_or_none(lru, key)
            # The heap may hold stale items for keys replaced or removed since.
            if type(v) is Entry and v.expires == expires:
                self._remove(key, v)
                self.expirations += 1

    def _rebuild_heap(self) -> None:
        lru = self._lru
        heap = []
        for key in lru:
            v = peek(lru, key)
            if type(v) is Entry:
                heap.append((v.expires, key))
        heapq.heapify(heap)
        self._heap = heap
