"""A small tier of already-decoded query results in front of the compressed cache.

A hit in the byte cache still decodes MessagePack (~3 us for 20 rows): as much as SQLite
needs for the query itself. This tier keeps the decoded rows of the most recently hit
results, as immutable tuples, so that a hit only builds a fresh :class:`Result` around them
(each caller gets its own ``values`` list; rows are tuples and SQLite values immutable, so no
caller can change what another one sees).

Keys are plain tuples ``(sql, params, max_rows)`` (no serialising on the hit path); only
parameters whose ``==`` tells apart what SQLite tells apart are accepted (``int``, ``str``,
``bytes``, ``None``; not ``float``: ``1 == 1.0`` and ``0.0 == -0.0`` in Python but not in a
result), others go through the byte cache only. Freshness is the same as in the byte cache:
each entry carries the version stamp it was read under and is dropped when the stamp moved.

Memory: each entry is charged (an honest, slightly high estimate from ``sys.getsizeof`` of
everything it holds) to the :class:`CompressedLRU` it is attached to, and the tier stays within
``maxsize // SIDE_FRACTION`` of it; results bigger than 1/8 of that are not kept here.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from ..storage.results import Column, Params, Result, Value
from .doorkeeper import sampled
from .lru import SIDE_FRACTION, CompressedLRU, Key

__all__ = ["DecodedTier", "fast_key"]

FastKey = tuple[Any, ...]
# Per entry beyond the objects sized below: the OrderedDict slot and node (~110 B), the
# entry tuple's references and the Result template bookkeeping.
ENTRY_OVERHEAD = 200

_EXACT = frozenset({int, str, bytes, type(None)})


def fast_key(sql: str, params: Params, max_rows: int | None) -> FastKey | None:
    """The tier's key, or None when the parameters cannot be compared safely by ``==``."""
    if params is None:
        return (sql, None, max_rows)
    t = type(params)
    if t is list or t is tuple:
        for v in params:
            if type(v) not in _EXACT:
                return None
        return (sql, tuple(params), max_rows)
    if isinstance(params, Mapping):
        items = tuple(params.items())
        for name, v in items:
            if type(name) is not str or type(v) not in _EXACT:
                return None
        return (sql, ("named", items), max_rows)
    return None


# stamp, columns, rows, truncated, charged bytes, byte-cache key, expiry (None: no TTL)
_Decoded = tuple[
    Hashable, tuple[Column, ...], tuple[tuple[Value, ...], ...], bool, int, bytes, float | None
]


class DecodedTier:
    """Decoded results by :func:`fast_key`, LRU, charged to ``lru``'s byte cap."""

    def __init__(self, lru: CompressedLRU) -> None:
        self.lru = lru
        self._timer = lru.timer
        self._lock = threading.Lock()
        self._entries: OrderedDict[FastKey, _Decoded] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        lru.attach(self)

    @property
    def max_bytes(self) -> int:
        return self.lru.maxsize // SIDE_FRACTION

    def worth_keeping(self) -> bool:
        """Whether a byte-cache hit should also be kept decoded here: always below the tier's
        budget, one hit in ``FULL_FILL_EVERY`` at it (doorkeeper.py). Keeping every hit
        decoded made a byte-cache hit cost more than reading SQLite (9.0 vs 8.3 us, sizing and
        evicting decoded rows that uniform random traffic never reads again); a result read
        often still gets in after a few hits, and stays."""
        return self._bytes * 16 < self.lru.maxsize * 15 // SIDE_FRACTION or sampled()

    def get(self, key: FastKey, stamp: Hashable) -> Result | None:
        """A new Result around the decoded rows, if held for ``stamp``; else None."""
        with self._lock:
            e = self._entries.get(key)
            if e is None:
                return None
            if e[0] != stamp or (e[6] is not None and e[6] <= self._timer()):
                del self._entries[key]
                self._bytes -= e[4]
                stale = e[4]
            else:
                self._entries.move_to_end(key)
                self.hits += 1
                return Result(e[1], list(e[2]), truncated=e[3], cached=True)
        self.lru.charge(-stale)
        return None

    def put(
        self,
        key: FastKey,
        lkey: bytes,
        stamp: Hashable,
        result: Result,
        expires: float | None = None,
    ) -> None:
        """Keep ``result``'s rows for ``stamp`` (copied into tuples: callers own ``result``).

        ``expires``: the byte entry's expiry time (on the cache's timer), which this follows.
        """
        rows = tuple(result.values)
        size = _size(key, rows, stamp, lkey)
        limit = self.max_bytes
        if size > limit // 8:
            return
        freed = 0
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                freed += old[4]
            self._entries[key] = (
                stamp,
                result.columns,
                rows,
                result.truncated,
                size,
                lkey,
                expires,
            )
            self._bytes += size - freed
            while self._bytes > limit and self._entries:
                _, e = self._entries.popitem(last=False)
                self._bytes -= e[4]
                freed += e[4]
        self.lru.charge(size - freed)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    # --- SideTier ---------------------------------------------------------------------

    def shrink(self, max_bytes: int) -> None:
        freed = 0
        with self._lock:
            while self._bytes > max_bytes and self._entries:
                _, e = self._entries.popitem(last=False)
                self._bytes -= e[4]
                freed += e[4]
        if freed:
            self.lru.charge(-freed)

    def clear(self) -> None:
        self.shrink(-1)

    def drop_where(self, predicate: Callable[[Key], bool]) -> None:
        """Drop the entries whose byte-cache key matches (``clear('query')`` and the like)."""
        freed = 0
        with self._lock:
            for k in [k for k, e in self._entries.items() if predicate(e[5])]:
                freed += self._entries.pop(k)[4]
            self._bytes -= freed
        if freed:
            self.lru.charge(-freed)


def _size(key: FastKey, rows: tuple[tuple[Value, ...], ...], stamp: Hashable, lkey: bytes) -> int:
    getsizeof = sys.getsizeof
    n = ENTRY_OVERHEAD + getsizeof(rows) + getsizeof(lkey) + _deep(stamp) + _deep(key)
    for row in rows:
        n += getsizeof(row)
        for v in row:
            n += getsizeof(v)
    return n


def _deep(obj: object) -> int:
    """Size of a key/stamp: nested tuples of plain values (shared strings counted anyway)."""
    n = sys.getsizeof(obj)
    if type(obj) is tuple:
        for v in obj:
            n += _deep(v)
    return n
