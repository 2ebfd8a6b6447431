"""The entries of :class:`~edgestore.cache.lru.CompressedLRU`: stored forms and their charge.

A value is held raw (``bytes``), compressed (:class:`Z`, a zstd frame) or with an expiry time
(:class:`Entry` around either). :func:`size_of` is the charge of an entry against the byte cap
(see the ``lru`` module docstring, "Memory accounting").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol

import cachetools
import zstandard

__all__ = [
    "BYTES_HEADER",
    "ENTRY_OVERHEAD",
    "FREQUENT_DEN",
    "FREQUENT_NUM",
    "FREQ_SHARE",
    "FREQ_SLOT",
    "HOT_FRACTION",
    "HOT_OVERHEAD",
    "HOT_VALUE_MAX",
    "PROMOTE_HITS",
    "PROMOTE_HITS_FULL",
    "SIDE_FRACTION",
    "TTL_OVERHEAD",
    "Z_HEADER",
    "Entry",
    "Key",
    "SideTier",
    "Stored",
    "Z",
    "peek",
    "peek_or_none",
    "raw_len",
    "replace_value",
    "size_of",
]

Key = str | bytes

# Bookkeeping bytes per entry beyond the value's and the key's own objects: one slot in
# cachetools' data dict (~60 B right after a resize) and in its recency OrderedDict (dict slot,
# fast-node slot and node, ~115 B).
ENTRY_OVERHEAD = 176
# A value in the hot set is also a slot in the hot OrderedDict plus its length (an int).
HOT_OVERHEAD = 144
# A TTL wraps the value in a small object and adds an (expires, key) tuple to the expiry heap;
# the heap may also hold one stale tuple per live TTL entry before it is rebuilt, which keeps
# an evicted key alive: a TTL entry is charged its key twice.
TTL_OVERHEAD = 256
BYTES_HEADER = sys.getsizeof(b"")
Z_HEADER = BYTES_HEADER + 16  # a bytes subclass instance is GC-tracked
HOT_VALUE_MAX = 16 * 1024
HOT_FRACTION = 8
# The frequent set may take up to 7/8 of the cap (the rest holds compressed and recent values):
# under skewed reads the hottest values are served raw (3/4 here: ~0.26x a bare LRU on the 4 KiB
# zipf bench with 96% hits; 7/8: ~0.36x with 94% hits; the bare LRU has 92.5%).
FREQUENT_NUM, FREQUENT_DEN = 7, 8
PROMOTE_HITS = 3
# Once the frequent set is full, a promotion compresses its least recently used value again
# (~10 us for 4 KiB): only clearly hotter values get in then.
PROMOTE_HITS_FULL = 8
# The frequency counters (a dict of key -> small int, ~100 B a slot with the key shared) are
# bounded to 1/40 of the cap; they are cleared when full, which also ages the counts.
FREQ_SLOT = 100
FREQ_SHARE = 40


class SideTier(Protocol):
    """Memory kept next to the entries and charged to the same cap (decoded query results).

    The tier charges its bytes with :meth:`CompressedLRU.charge` and stays within
    ``maxsize // SIDE_FRACTION``; the cache calls these (never with its own lock held).
    """

    def shrink(self, max_bytes: int) -> None: ...

    def clear(self) -> None: ...

    def drop_where(self, predicate: Callable[[Key], bool]) -> None: ...


# A side tier may hold up to 1/16 of the cap.
SIDE_FRACTION = 16


class Z(bytes):
    """A zstd frame (the type tells a compressed value from a raw one, for free)."""

    __slots__ = ()


class Entry:
    """A value with an expiry time."""

    __slots__ = ("data", "expires")

    def __init__(self, data: bytes, expires: float) -> None:
        self.data = data
        self.expires = expires


Stored = bytes | Entry
peek = cachetools.Cache.__getitem__  # read without touching the recency order
replace_value = cachetools.Cache.__setitem__  # replace a value without touching the order


def size_of(key: Key, v: Stored) -> int:
    if type(v) is Entry:
        return size_of(key, v.data) + TTL_OVERHEAD + sys.getsizeof(key)
    header = Z_HEADER if type(v) is Z else BYTES_HEADER
    return len(v) + header + sys.getsizeof(key) + ENTRY_OVERHEAD  # type: ignore[arg-type]


def raw_len(v: bytes) -> int:
    if type(v) is Z:
        n = zstandard.frame_content_size(v)
        return int(n) if n >= 0 else len(v)
    return len(v)


def peek_or_none(lru: cachetools.LRUCache[Key, Stored], key: Key) -> Stored | None:
    try:
        return peek(lru, key)
    except KeyError:
        return None
