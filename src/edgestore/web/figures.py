"""The core's typed figures as the ops routes, ``/metrics`` and the dashboard history read
them: one place that knows where each comes from, and what a closed store reports (nothing:
a scrape during shutdown answers with the figures it has)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import msgspec

from ..cache.stats import CacheStats
from ..cache.store_cache import StoreCache
from ..memory import Level, rss_bytes
from ..storage import PoolStats

if TYPE_CHECKING:
    from .state import AppState

__all__ = ["LiveStats", "cache_stats", "live_stats", "pool_stats"]


class LiveStats(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/stats``: the dashboard's headline figures (bytes, seconds, counts)."""

    time: float
    """Unix time of this reading."""
    uptime_seconds: float
    memory_rss_bytes: int
    """The whole server's RSS now (every process of it)."""
    memory_budget_bytes: int | None
    memory_pressure_level: int
    """0 normal, 1 warning, 2 critical, 3 emergency."""
    memory_level: str
    cache_bytes: int
    """Bytes charged to the cache now."""
    cache_max_bytes: int
    """The configured cache cap (memory pressure may lower the cap in force)."""
    cache_entries: int
    cache_hit_ratio: float
    """Lookups that found a value / all lookups since start, 0..1."""
    pool_connections: int
    pool_max_connections: int
    requests_total: int
    hot_cache_hits: int
    hot_cache_bytes: int


def cache_stats(state: AppState) -> CacheStats | None:
    """The store's cache figures; None while the store is closed or has no cache."""
    store = state.store_or_none
    cache = store.read_cache if store is not None else None
    return cache.stats() if isinstance(cache, StoreCache) else None


def pool_stats(state: AppState) -> PoolStats | None:
    """The pool's figures; None while the store is closed."""
    store = state.store_or_none
    return store.pool.stats() if store is not None else None


def live_stats(state: AppState) -> LiveStats:
    memory = state.memory
    level = memory.level if memory is not None else Level.NORMAL
    cache = cache_stats(state)
    pool = pool_stats(state)
    now = time.time()
    return LiveStats(
        time=now,
        uptime_seconds=now - state.started_at,
        memory_rss_bytes=memory.rss() if memory is not None else rss_bytes(),
        memory_budget_bytes=memory.budget if memory is not None else None,
        memory_pressure_level=int(level),
        memory_level=level.label,
        cache_bytes=cache.bytes if cache is not None else 0,
        cache_max_bytes=state.settings.cache_max_bytes,
        cache_entries=cache.entries if cache is not None else 0,
        cache_hit_ratio=cache.hit_ratio if cache is not None else 0.0,
        pool_connections=pool.connections_open if pool is not None else 0,
        pool_max_connections=pool.max_connections if pool is not None else 0,
        requests_total=state.metrics.requests_total,
        hot_cache_hits=state.hot.hits,
        hot_cache_bytes=state.hot.bytes,
    )
