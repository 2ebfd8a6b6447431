"""CompressedLRU: a byte-capped, thread-safe LRU of bytes values on cachetools, zstd inside.

The modules of the cache, one job each:

- ``lru.py`` (here): the API -- reads, writes, maintenance, figures;
- ``lru_space.py``: the entries within the byte cap -- what an entry is charged (memory
  accounting), compressing raw values and then evicting when the cap is passed;
- ``lru_raw.py``: which big values stay raw (recently used, or read often);
- ``lru_expiry.py``: when TTL entries run out;
- ``lru_entries.py``: the stored forms of a value and the measured overheads.

Compression. Values of at least ``compress_threshold`` bytes are compressed when memory asks
for it, not on arrival (lru_space.py). Values of 16 KiB or more are compressed when stored, by
:meth:`prepare`, which async callers run on a thread.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

from ..errors import ValueTooLarge
from .codec import Codec
from .lru_entries import (
    BYTES_HEADER,
    ENTRY_OVERHEAD,
    FREQ_SLOT,
    HOT_OVERHEAD,
    HOT_VALUE_MAX,
    PROMOTE_HITS,
    SIDE_FRACTION,
    TTL_OVERHEAD,
    Z_HEADER,
    Entry,
    Key,
    SideTier,
    Stored,
    Z,
    peek,
    raw_len,
    size_of,
)
from .lru_space import CappedEntries
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


class CompressedLRU(CappedEntries):
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
        self.threshold = compress_threshold
        codec = Codec(
            level=level,
            dictionary=dictionary,
            sample_budget=max(64 * 1024, min(1024 * 1024, maxsize // 32)),
        )
        super().__init__(maxsize, timer, codec)
        self.sets = 0
        self.rejections = 0
        self.deletes = 0

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
                    self._raw.touch(key)
                    return data
            else:
                assert type(v) is Z
                data = v
            self.hits += 1
            promote = self._raw.count_hit(key, data)
        out = self._decompress(key, data)
        if out is not None and promote:
            self._promote(key, data, out)
        return out if out is not None else default

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
                self._raw.touch(key)
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
            promote = self._raw.count_hit(key, stored)
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
                    self._raw.add_hot(key, n)
            if self._bytes > self._maxsize:
                self._make_room()
            self.sets += 1
            if ttl is not None:
                assert type(stored) is Entry
                self._expiry.entries += 1
                if self._expiry.push(stored.expires, key):
                    self._rebuild_heap()

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
            self._raw.clear()
            self._expiry.clear()
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
            self._raw.set_budgets(maxsize)
            self._make_room()

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
        """Bytes charged for the entries held (lru_space.py, memory accounting)."""
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
