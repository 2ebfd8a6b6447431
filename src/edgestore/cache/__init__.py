"""Caching: a compressed byte-capped LRU, the application key/value cache, the query cache.

One :class:`CompressedLRU` holds both kinds of entries on one byte budget: key/value entries
under ``str`` keys (:class:`KVCache`), query results under ``bytes`` keys (:class:`QueryCache`).
The optional Redis tier (:mod:`edgestore.cache.redis_tier`) needs the ``redis`` extra and is
imported only when configured.
"""

from __future__ import annotations

from .kv import KVCache
from .lru import CompressedLRU
from .query import QueryCache, is_volatile, normalize_sql

__all__ = ["CompressedLRU", "KVCache", "QueryCache", "is_volatile", "normalize_sql"]
