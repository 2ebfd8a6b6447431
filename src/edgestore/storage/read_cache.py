"""What the store asks of a read cache attached to it (``Store.read_cache``).

Storage defines the interface; ``edgestore.cache.store_cache.StoreCache`` implements it and
``edgestore.open`` attaches one. The cache in turn uses only the store's public face: table
versions (``store.versions``), ``store.check_external()`` and the read it is handed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .analysis import Analysis
from .results import Params, Result

__all__ = ["KeyValueCache", "ReadCache", "ReadCacheFigures"]


class KeyValueCache(Protocol):
    """``store.cache``: application values under string keys."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def clear(self) -> int: ...


class ReadCacheFigures(Protocol):
    """The figures every read cache reports (``edgestore.cache.stats.CacheStats`` has these
    and each part's details)."""

    @property
    def bytes(self) -> int:
        """Bytes charged against the cache's cap."""
        ...

    @property
    def max_bytes(self) -> int:
        """The cap now, in bytes."""
        ...

    @property
    def entries(self) -> int: ...

    @property
    def hits(self) -> int: ...

    @property
    def misses(self) -> int: ...


class ReadCache(Protocol):
    """Serves ``store.query(..., cache=True)``."""

    default: bool
    """Whether ``query(cache=None)`` goes through the cache."""

    @property
    def kv(self) -> KeyValueCache: ...

    def admit(self, sql: str, params: Params, max_rows: int | None) -> bool:
        """False: read SQLite directly, without the cache (e.g. a key's first read)."""
        ...

    def hit(
        self, sql: str, analysis: Analysis, params: Params, max_rows: int | None
    ) -> Result | None:
        """A fresh cached result, without awaiting; None sends the read to :meth:`read`."""
        ...

    async def read(
        self,
        sql: str,
        analysis: Analysis,
        params: Params,
        ttl: float | None,
        max_rows: int | None,
        run: Callable[[], Awaitable[Result]],
    ) -> Result:
        """The result through the cache; ``run()`` performs the real read on a miss."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def stats(self) -> ReadCacheFigures: ...
