"""The cache's figures as typed, frozen values (what ``stats()`` of each cache part returns).

``msgspec.Struct`` (frozen): the same type the Hrana codec uses, rendered to JSON by the web
layer as it is (no ``asdict``); field names are the JSON keys of ``GET /api/v1/cache``.
Sizes are bytes, ratios are 0..1 unless a docstring says otherwise, counters count since the
cache was created.
"""

from __future__ import annotations

import msgspec

__all__ = ["CacheStats", "CompressionStats", "LRUStats", "QueryCacheStats", "RedisTierStats"]


class CompressionStats(msgspec.Struct, frozen=True, kw_only=True):
    """The compressed store's codec."""

    threshold: int
    """Values at least this many bytes long are compressed."""
    level: int
    """The zstd level."""
    compressions: int
    promotions: int
    ratio: float
    """Raw bytes in / stored bytes out over every compressed value (>= 1 saves space)."""
    dictionary: bool
    """Dictionary training is on."""
    dictionary_id: int | None
    dictionary_bytes: int
    dictionaries_loaded: int
    dictionary_ratio: float | None
    trainings: int
    sample_bytes: int
    """Bytes of values kept as training samples."""


class LRUStats(msgspec.Struct, frozen=True, kw_only=True):
    """The byte-capped compressed store shared by the query and key/value caches."""

    entries: int
    bytes: int
    """Bytes charged against the cap (values, keys, per-entry overhead, side tiers)."""
    max_bytes: int
    """The cap now (memory pressure lowers it)."""
    value_bytes: int
    """Bytes of the values as given (before compression)."""
    stored_bytes: int
    """Bytes of the values as stored (after compression)."""
    ratio: float
    """``value_bytes / stored_bytes`` (1.0 when empty)."""
    compressed_entries: int
    hot_entries: int
    hot_bytes: int
    side_bytes: int
    """Bytes charged by attached tiers (decoded results)."""
    frequent_entries: int
    frequent_bytes: int
    overhead_bytes: int
    """Bytes held outside the entries: dictionaries, samples, frequency sketch."""
    hits: int
    misses: int
    hit_rate: float
    """hits / (hits + misses), 0..1 (0.0 before the first lookup)."""
    sets: int
    evictions: int
    expirations: int
    rejections: int
    deletes: int
    compression: CompressionStats


class QueryCacheStats(msgspec.Struct, frozen=True, kw_only=True):
    """Read results cached by SQL, parameters and the versions of the tables read."""

    hits: int
    misses: int
    hit_rate: float
    """hits / (hits + misses), 0..1."""
    stale: int
    stores: int
    too_large: int
    coalesced: int
    """Reads that waited for an identical read in flight instead of running."""
    uncacheable: int
    shared_tier_hits: int
    decoded_entries: int
    decoded_bytes: int
    decoded_hits: int
    inflight: int
    turned_away: int
    """Misses that skipped the cache as a key's first sighting while most reads were new keys
    (counted in ``misses``; the doorkeeper, cache/doorkeeper.py)."""
    bypassed: int
    """Misses that skipped the cache while it did not pay for its lookups (in ``misses``)."""
    bypassing: bool
    """Whether reads skip the cache now (most of them; one in a sample still looks)."""
    fills_skipped: int
    """Misses not stored because the cache was full (one in a sample is)."""


class RedisTierStats(msgspec.Struct, frozen=True, kw_only=True):
    """The optional shared tier (several nodes, one Redis)."""

    namespace: str
    published: int
    """Invalidations this node sent."""
    received: int
    """Invalidations other nodes sent that this node applied."""
    hits: int
    misses: int
    stores: int
    errors: int


class CacheStats(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A store's whole cache: the shared budget's figures first, then each part's."""

    bytes: int
    max_bytes: int
    entries: int
    hits: int
    """Lookups in the shared store that found a value (query and key/value)."""
    misses: int
    hit_ratio: float
    """hits / (hits + misses), 0..1."""
    compression_ratio: float
    cache: LRUStats
    query: QueryCacheStats
    query_cache_default: bool
    """Reads are cached unless they opt out."""
    external_checks: int
    external_fast_checks: int
    unverified_reads: int
    first_sightings_uncached: int
    redis: RedisTierStats | None = None
    """Present only with a Redis tier."""
