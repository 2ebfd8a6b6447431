"""KVCache: the application key/value cache, on the same byte budget as the query cache.

Values are anything msgspec encodes to MessagePack (None, bool, int, float, str, bytes,
lists, dicts, datetimes, ...); they come back as MessagePack decodes them (tuples as lists).
Keys are ``str`` (query cache keys are ``bytes``, so the two never collide in the shared LRU).
Encoding, compressing and decompressing a big value run on a thread, off the event loop.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import CacheError
from .lru import HOT_VALUE_MAX, CompressedLRU
from .offload import offload

__all__ = ["KVCache"]

# Values whose encoded form is at least this big are compressed/decompressed on a thread.
OFFLOAD_BYTES = HOT_VALUE_MAX

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class KVCache:
    """``await cache.get(key)`` / ``set(key, value, ttl=...)`` / ``delete`` / ``clear``."""

    def __init__(self, lru: CompressedLRU, *, default_ttl: float | None = None) -> None:
        self.lru = lru
        self.default_ttl = default_ttl

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` (missing or expired)."""
        stored = self.lru.peek_stored(_check(key))
        if stored is None:
            return default
        if len(stored) >= OFFLOAD_BYTES:
            raw = await offload(self.lru.decompress, key, stored)
            return default if raw is None else await offload(_decode, raw)
        raw = self.lru.decompress(key, stored)
        return default if raw is None else _decode(raw)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (default: the cache's default).

        Raises ValueTooLarge when the value cannot fit in the whole budget (the cache is left
        as it was) and CacheError when it cannot be encoded.
        """
        _check(key)
        try:
            data = _encode(value)
        except (TypeError, msgspec.EncodeError) as exc:
            raise CacheError(f"cannot cache a value of type {type(value).__name__}: {exc}") from exc
        if len(data) >= OFFLOAD_BYTES:
            data = await offload(self.lru.prepare, data)
        self.lru.set(key, data, ttl if ttl is not None else self.default_ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        return self.lru.delete(_check(key))

    async def clear(self) -> int:
        """Remove every key/value entry (query results stay); returns how many."""
        return self.clear_now()

    def clear_now(self) -> int:
        """:meth:`clear` for synchronous callers (memory pressure actions)."""
        return self.lru.delete_where(lambda k: type(k) is str)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.lru


def _check(key: object) -> str:
    if type(key) is not str:
        raise TypeError(f"cache keys are str, not {type(key).__name__}")
    return key
