"""The caches of one Store: what ``store.cache`` and cached reads use.

A cached read goes: admission (bypass, or a key's first access while most keys are new: read
SQLite directly, see ``doorkeeper.py``) -> external-change check -> stamp of the tables read ->
decoded hit -> lookup -> (miss) single-flight run -> store if the stamp did not move (and, the
cache being full, only for a sample of the misses).

The external-change check must be cheap, it runs on every hit: ``store.check_external()``
(storage/external.py) compares the WAL-index header of the ``-shm`` file with the one seen at
the last full check and runs ``PRAGMA data_version`` only when it moved. When it cannot tell
(no reader idle for the full check), the read runs for real instead of trusting the cache.
A :class:`StoreCache` is the store's ``read_cache`` (storage/read_cache.py); ``edgestore.open``
attaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import TYPE_CHECKING

from ..errors import CacheError
from .decoded import fast_key
from .kv import KVCache
from .lru import CompressedLRU
from .query import QueryCache
from .stats import CacheStats

if TYPE_CHECKING:
    from ..storage.analysis import Analysis
    from ..storage.results import Params, Result
    from ..storage.store import Store
    from .redis_tier import RedisTier

__all__ = ["StoreCache"]

log = logging.getLogger(__name__)


class StoreCache:
    """One byte budget (``settings.cache_max_bytes``) for the query and key/value caches."""

    @staticmethod
    def attach(store: Store) -> StoreCache:
        """A new cache for ``store``, set as its ``read_cache`` (before the store starts)."""
        caching = StoreCache(store)
        store.read_cache = caching
        return caching

    @staticmethod
    def of(store: Store) -> StoreCache:
        """The cache attached to ``store`` (CacheError if it has none)."""
        caching = store.read_cache
        if not isinstance(caching, StoreCache):
            raise CacheError("this store has no cache: open it with edgestore.open()")
        return caching

    def __init__(self, store: Store) -> None:
        s = store.settings
        self.store = store
        self.lru = CompressedLRU(
            s.cache_max_bytes,
            compress_threshold=s.cache_compress_threshold,
            level=s.cache_compress_level,
            dictionary=s.cache_dictionary,
        )
        self.kv = KVCache(self.lru)
        self.query = QueryCache(self.lru, default_ttl=s.query_cache_ttl)
        self.default = s.query_cache
        self.unchecked = 0
        self.redis: RedisTier | None = None
        self.admit: Callable[[str, Params, int | None], bool] = self.query.doorkeeper.admit
        """False for a read the doorkeeper keeps away from the cache (bypassing while the
        cache does not pay, or strict and the key's first sighting): ``Store.query`` then
        reads SQLite without the cache, before anything else, so that a random point read
        costs about what ``cache=False`` costs (bench/bench_storage.py ``miss``). Bound to
        ``Doorkeeper.admit`` itself: one call on the path every cached read takes. Not
        strict, :meth:`hit` asks the doorkeeper after the decoded tier. With a Redis tier,
        whose entries other processes may have filled, it admits everything."""
        self._stamps: dict[frozenset[str], Callable[[], Hashable]] = {}
        # (sql, params, max_rows, key) of the definite miss hit() just saw; read(), called
        # right after it with no await in between, reuses the key and skips a second lookup.
        self._miss: tuple[str, Params, int | None, bytes] | None = None
        # (sql, params) of the first read hit() just turned away: read() runs it uncached.
        self._first: tuple[str, Params] | None = None

    async def start(self) -> None:
        """Connect the Redis tier when one is configured."""
        url = self.store.settings.redis_url
        if url and self.redis is None:
            from .redis_tier import RedisTier

            tier = RedisTier(self.store, self.query, url)
            await tier.start()
            self.redis = tier
            self.admit = _admit_all

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.close()
            self.redis = None

    def hit(
        self, sql: str, analysis: Analysis, params: Params, max_rows: int | None
    ) -> Result | None:
        """The cached result when there is a fresh, small one; no await (the common hit).

        None means: go through :meth:`read` (miss, not cacheable, unverifiable, big entry,
        a first read the doorkeeper turned away: doorkeeper.py). No doorkeeper with a shared
        (Redis) tier, whose entries other processes may have filled.
        """
        self._miss = None
        self._first = None
        reads = analysis.deps.reads
        qc = self.query
        # Strict: admit() has decided already. Not strict: after the decoded tier, so that
        # its hits pay nothing for admission.
        door = qc.doorkeeper if self.redis is None and not qc.doorkeeper.strict else None
        if not qc.cacheable(sql, reads) or not self.store.check_external():
            return None
        stamp = self._stamp_of(reads)()
        fast = fast_key(sql, params, max_rows)
        if fast is not None:
            hit = qc.decoded.get(fast, stamp)
            if hit is not None:
                qc.hits += 1
                return hit
            if door is not None and not door.admit(sql, params, max_rows, True):
                self._first = (sql, params)  # read() runs it uncached
                return None
        key = qc.key(sql, params, max_rows)
        result = qc.get_now(key, stamp, fast)
        if result is None and qc.absent:
            self._miss = (sql, params, max_rows, key)
        return result

    async def read(
        self,
        sql: str,
        analysis: Analysis,
        params: Params,
        ttl: float | None,
        max_rows: int | None,
        run: Callable[[], Awaitable[Result]],
    ) -> Result:
        """A read through the query cache; ``run()`` performs the real read on a miss."""
        first, self._first = self._first, None
        if first is not None and first[0] is sql and first[1] is params:
            return await run()  # turned away by hit()
        reads = analysis.deps.reads
        qc = self.query
        miss, self._miss = self._miss, None
        if miss is not None and miss[0] is sql and miss[1] is params and miss[2] == max_rows:
            # hit() just found no entry (freshness checked, miss counted): go straight to
            # the read, still single-flight; or, the cache being full, mostly without filling
            # (doorkeeper.py: at the cap, filling every miss only churns). A shared tier is
            # always asked: another node may have the entry.
            if self.redis is None and not qc.worth_filling():
                return await run()
            return await qc.fetch(
                miss[3], self._stamp_of(reads), run, ttl, lookup=False, counted=True, reads=reads
            )
        if not qc.cacheable(sql, reads):
            return await run()
        key = qc.key(sql, params, max_rows)
        stamp_of = self._stamp_of(reads)
        if not self.store.check_external():
            # Could not verify that nobody else wrote: read for real, then cache that.
            self.unchecked += 1
            return await qc.fetch(key, stamp_of, run, ttl, lookup=False, reads=reads)
        fast = fast_key(sql, params, max_rows)
        return await qc.fetch(key, stamp_of, run, ttl, reads=reads, fast=fast)

    def _stamp_of(self, reads: frozenset[str]) -> Callable[[], Hashable]:
        stamp_of = self._stamps.get(reads)
        if stamp_of is None:
            if len(self._stamps) > 4096:
                self._stamps.clear()
            stamp_of = self._stamps[reads] = partial(self.store.versions.stamp, reads)
        return stamp_of

    def stats(self) -> CacheStats:
        """The shared budget's figures (for metrics), then each part's."""
        lru = self.lru.stats()
        return CacheStats(
            bytes=lru.bytes,
            max_bytes=lru.max_bytes,
            entries=lru.entries,
            hits=lru.hits,
            misses=lru.misses,
            hit_ratio=lru.hit_rate,
            compression_ratio=lru.ratio,
            cache=lru,
            query=self.query.stats(),
            query_cache_default=self.default,
            external_checks=self.store.external.full_checks,
            external_fast_checks=self.store.external.fast_checks,
            unverified_reads=self.unchecked,
            first_sightings_uncached=self.query.doorkeeper.turned_away,
            redis=self.redis.stats() if self.redis is not None else None,
        )


def _admit_all(sql: str, params: Params, max_rows: int | None) -> bool:
    return True
