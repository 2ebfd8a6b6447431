"""QueryCache: read results keyed by normalised SQL + parameters, checked against a version stamp.

The stamp comes from the store's table versions for the tables the statement reads (from
SQLite's authorizer) and is taken *before* the read runs: a write that commits while the read
runs moves the versions past it, so the entry is stale at once. An entry is stored as
``len(stamp) | stamp | payload`` where the payload is MessagePack of (columns, rows, truncated):
lossless for every SQLite value (None, int, float, str, bytes), no pickle. A lookup compares
the stamp bytes before decoding anything, and drops a stale entry on sight.

Concurrent misses on the same key *and the same stamp* run the query once (single flight);
a caller whose stamp differs (a write happened in between) never joins an older run.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Protocol

import msgspec

from ..errors import ValueTooLarge
from ..storage.results import Column, Params, Result
from .decoded import DecodedTier, FastKey
from .doorkeeper import Doorkeeper, sampled
from .lru import HOT_VALUE_MAX, CompressedLRU
from .offload import offload
from .stats import QueryCacheStats

__all__ = ["QueryCache", "SharedTier", "is_volatile", "normalize_sql"]

log = logging.getLogger(__name__)


class SharedTier(Protocol):
    """A second tier shared by several nodes (the Redis tier), asked after a local miss."""

    hits: int
    errors: int

    async def lookup(self, key: bytes, reads: frozenset[str]) -> tuple[bytes, bytes | None]:
        """``(encoded global stamp, stored entry or None)``."""
        ...

    def store_entry(self, key: bytes, entry: bytes) -> None: ...


_encode = msgspec.msgpack.Encoder(order="sorted").encode
# Rows decode as tuples of Any: MessagePack keeps int, float, str, bin (bytes) and nil apart.
# The columns stay raw on the hot path: they map to Column objects through a small memo
# (building frozen dataclasses costs more than decoding the rows).
_Payload = tuple[list[tuple[str, str | None]], list[tuple[Any, ...]], bool]
_decode_fast = msgspec.msgpack.Decoder(tuple[msgspec.Raw, list[tuple[Any, ...]], bool]).decode
_decode_columns = msgspec.msgpack.Decoder(list[tuple[str, str | None]]).decode
_COLUMNS: dict[bytes, tuple[Column, ...]] = {}

# Encoding and compressing a result of more cells than this runs on a thread.
OFFLOAD_CELLS = 4096

_QUOTED = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])""")
_SPACE = re.compile(r"\s+")
# Functions whose result changes without any table changing: never cache such statements.
_VOLATILE = re.compile(
    r"\b(?:random|randomblob|changes|total_changes|last_insert_rowid|"
    r"current_timestamp|current_date|current_time)\b"
    r"|\b(?:date|time|datetime|julianday|unixepoch|strftime|timediff)\s*\(\s*\)",
    re.IGNORECASE,
)
_NORMALISED_MAX = 4096


def normalize_sql(sql: str) -> str:
    """Collapse whitespace outside quoted strings/identifiers and drop a trailing ``;``."""
    parts = _QUOTED.split(sql)
    for i in range(0, len(parts), 2):  # even parts are outside quotes
        parts[i] = _SPACE.sub(" ", parts[i])
    return "".join(parts).strip().rstrip(";").rstrip()


def is_volatile(sql: str) -> bool:
    """True if ``sql`` calls a function whose value changes by itself (random(), 'now', ...)."""
    if "'now'" in sql.lower():
        return True
    return _VOLATILE.search(_QUOTED.sub("''", sql)) is not None


class QueryCache:
    """Cached read results on a :class:`CompressedLRU` (keys are ``bytes``)."""

    def __init__(self, lru: CompressedLRU, *, default_ttl: float | None = None) -> None:
        self.lru = lru
        self.default_ttl = default_ttl
        # Decoded results of recent hits, in front of the byte entries (same budget).
        self.decoded = DecodedTier(lru)
        # Whether a read uses the cache at all, and a miss fills it (doorkeeper.py).
        self.doorkeeper = Doorkeeper(self._hit_count)
        self._normalised: dict[str, bytes] = {}
        self._volatile: dict[str, bool] = {}
        self._inflight: dict[tuple[bytes, Hashable], asyncio.Future[Result]] = {}
        self.tier: SharedTier | None = None
        self.hits = 0
        self._misses = 0
        self.stale = 0
        self.stores = 0
        self.too_large = 0
        self.coalesced = 0
        self.uncacheable = 0
        self.tier_hits = 0
        # Whether the last get_now() found no entry at all (a counted, definite miss).
        self.absent = False
        self.fills_skipped = 0
        """Misses not stored because the cache was full (:meth:`worth_filling`)."""

    @property
    def misses(self) -> int:
        """Lookups that found nothing fresh, and reads the doorkeeper kept away (first
        sightings, bypassed reads: counted there, one counter less on their path)."""
        door = self.doorkeeper
        return self._misses + door.turned_away + door.bypassed

    def _hit_count(self) -> int:
        return self.hits

    def worth_filling(self) -> bool:
        """Whether a miss should be stored: always below the cap, one in ``FULL_FILL_EVERY``
        at it (doorkeeper.py: filling every miss of uniform random traffic made the default
        settings cost 2.8x ``cache=False``, with the hit rate of a cache that never changes)."""
        lru = self.lru
        if lru.currsize * 16 < lru.maxsize * 15 or sampled():
            return True
        self.fills_skipped += 1
        return False

    # --- keys -------------------------------------------------------------------------

    def key(self, sql: str, params: Params = None, max_rows: int | None = None) -> bytes:
        """The cache key of (SQL, parameters, row limit)."""
        head = self._normalised.get(sql)
        if head is None:
            if len(self._normalised) >= _NORMALISED_MAX:
                self._normalised.clear()
            head = self._normalised[sql] = normalize_sql(sql).encode()
        tail = b"" if params is None else _encode(_plain(params))
        if max_rows is None:
            return head + b"\x00" + tail
        return head + b"\x00" + tail + b"\x00" + str(max_rows).encode()

    def cacheable(self, sql: str, reads: frozenset[str]) -> bool:
        """Statements reading no table, or calling volatile functions, are not cached."""
        if not reads:
            self.uncacheable += 1
            return False
        volatile = self._volatile.get(sql)
        if volatile is None:
            if len(self._volatile) >= _NORMALISED_MAX:
                self._volatile.clear()
            volatile = self._volatile[sql] = is_volatile(sql)
        if volatile:
            self.uncacheable += 1
        return not volatile

    # --- lookups ----------------------------------------------------------------------

    def get_now(self, key: bytes, stamp: Hashable, fast: FastKey | None = None) -> Result | None:
        """:meth:`get` without awaiting: None on a miss and for big entries (use :meth:`get`).

        With ``fast`` (a :func:`~edgestore.cache.decoded.fast_key`), a hit is also kept
        decoded for the next one.
        """
        lru = self.lru
        stored = lru.peek_stored(key)
        self.absent = stored is None
        if stored is None:
            self._misses += 1
            return None
        if len(stored) >= HOT_VALUE_MAX:
            return None  # big: decompress/decode it off the loop in get()
        body = self._body(key, lru.decompress(key, stored), stamp)
        if body is None or len(body) >= HOT_VALUE_MAX:
            return None
        self.hits += 1
        result = _decode_payload(body)
        if fast is not None and self.decoded.worth_keeping():
            self.decoded.put(fast, key, stamp, result, lru.expiry(key))
        return result

    async def get(self, key: bytes, stamp: Hashable) -> Result | None:
        """The cached result for ``key`` if it was stored under ``stamp``; else None."""
        lru = self.lru
        stored = lru.peek_stored(key)
        if stored is None:
            self._misses += 1
            return None
        if len(stored) >= HOT_VALUE_MAX:
            raw = await offload(lru.decompress, key, stored)
        else:
            raw = lru.decompress(key, stored)
        body = self._body(key, raw, stamp)
        if body is None:
            return None
        if len(body) >= HOT_VALUE_MAX:
            result = await offload(_decode_payload, body)
        else:
            result = _decode_payload(body)
        self.hits += 1
        return result

    def _body(self, key: bytes, raw: bytes | None, stamp: Hashable) -> memoryview | None:
        """The payload of a decompressed entry stored under ``stamp``; None (a miss) if not."""
        if raw is None:
            self._misses += 1
            return None
        n = raw[0]
        if raw[1 : 1 + n] != _encode(stamp):
            # Written before a write to one of its tables (or an external change): stale.
            self.lru.delete(key)
            self.stale += 1
            self._misses += 1
            return None
        return memoryview(raw)[1 + n :]

    async def put(
        self, key: bytes, stamp: Hashable, result: Result, ttl: float | None = None
    ) -> bool:
        """Store ``result`` as valid for ``stamp``; False if it cannot fit in the cache."""
        ttl = ttl if ttl is not None else self.default_ttl
        cells = len(result.values) * max(1, len(result.columns))
        try:
            if cells >= OFFLOAD_CELLS:
                data = await offload(self._encode_prepared, stamp, result)
            else:
                data = _encode_entry(stamp, result)
            self.lru.set(key, data, ttl)
        except ValueTooLarge:
            self.too_large += 1
            return False
        self.stores += 1
        return True

    async def fetch(
        self,
        key: bytes,
        stamp_of: Callable[[], Hashable],
        run: Callable[[], Awaitable[Result]],
        ttl: float | None = None,
        *,
        lookup: bool = True,
        counted: bool = False,
        reads: frozenset[str] = frozenset(),
        fast: FastKey | None = None,
    ) -> Result:
        """The cached result, or ``run()``'s, stored for next time; one run per key and stamp.

        ``stamp_of()`` gives the current stamp of the statement's tables; it is taken before
        ``run()`` starts, and the result is only stored if the stamp did not move meanwhile.
        ``lookup=False`` skips the cached entry (the caller could not verify freshness, or
        has just found none: ``counted=True`` then, the miss is already counted).
        ``fast``: the decoded tier's key, to keep the result decoded there too.
        """
        stamp = stamp_of()
        if lookup:
            hit = await self.get(key, stamp)
            if hit is not None:
                return hit
        elif not counted:
            self._misses += 1
        flight = (key, stamp)
        pending = self._inflight.get(flight)
        if pending is not None:
            self.coalesced += 1
            try:
                joined = await asyncio.shield(pending)
            except asyncio.CancelledError:
                if pending.cancelled():  # the leader was cancelled, not us: run it ourselves
                    return await run()
                raise
            return _result(_payload_of(joined), cached=True)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._inflight[flight] = future
        tier = self.tier if reads else None
        shared: bytes | None = None
        ran = False
        try:
            result: Result | None = None
            if tier is not None:
                shared, result = await self._tier_lookup(tier, key, reads)
            if result is None:
                ran = True
                result = await run()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" noise without waiters
            raise
        finally:
            if self._inflight.get(flight) is future:
                del self._inflight[flight]
        future.set_result(result)
        # The decoded tier is filled by the first hit (get_now), not here: most misses are
        # never read again, and sizing a decoded result costs more than the read itself.
        if stamp_of() == stamp:
            await self.put(key, stamp, result, ttl)
        if tier is not None and ran and shared is not None:
            tier.store_entry(key, _entry_bytes(shared, result))
        return result

    async def _tier_lookup(
        self, tier: SharedTier, key: bytes, reads: frozenset[str]
    ) -> tuple[bytes | None, Result | None]:
        try:
            shared, blob = await tier.lookup(key, reads)
        except Exception as exc:  # the shared tier is an optimisation: never fail a read
            tier.errors += 1
            log.warning("shared cache tier lookup failed: %s", exc)
            return None, None
        if blob is None:
            return shared, None
        n = blob[0]
        if blob[1 : 1 + n] != shared:
            return shared, None  # tagged before a write somewhere: stale
        tier.hits += 1
        self.tier_hits += 1
        return shared, _decode_payload(memoryview(blob)[1 + n :])

    # --- housekeeping -----------------------------------------------------------------

    def clear(self) -> int:
        """Drop every cached result (key/value entries stay); returns how many."""
        return self.lru.delete_where(lambda k: type(k) is bytes)

    def stats(self) -> QueryCacheStats:
        lookups = self.hits + self.misses
        return QueryCacheStats(
            hits=self.hits,
            misses=self.misses,
            hit_rate=round(self.hits / lookups, 4) if lookups else 0.0,
            stale=self.stale,
            stores=self.stores,
            too_large=self.too_large,
            coalesced=self.coalesced,
            uncacheable=self.uncacheable,
            shared_tier_hits=self.tier_hits,
            decoded_entries=len(self.decoded),
            decoded_bytes=self.decoded.bytes,
            decoded_hits=self.decoded.hits,
            inflight=len(self._inflight),
            turned_away=self.doorkeeper.turned_away,
            bypassed=self.doorkeeper.bypassed,
            bypassing=self.doorkeeper.bypass,
            fills_skipped=self.fills_skipped,
        )

    def _encode_prepared(self, stamp: Hashable, result: Result) -> bytes:
        return self.lru.prepare(_encode_entry(stamp, result))


def _plain(params: Params) -> Any:
    if type(params) is list or type(params) is tuple:
        return params
    if isinstance(params, Mapping):
        return dict(params)
    return list(params) if params is not None else None


def _payload_of(result: Result) -> _Payload:
    cols = [(c.name, c.decltype) for c in result.columns]
    return cols, result.values, result.truncated


def _encode_entry(stamp: Hashable, result: Result) -> bytes:
    return _entry_bytes(_encode(stamp), result)


def _entry_bytes(head: bytes, result: Result) -> bytes:
    if len(head) > 255:
        raise ValueError("query cache stamps must encode to at most 255 bytes")
    return bytes((len(head),)) + head + _encode(_payload_of(result))


def _decode_payload(body: bytes | memoryview) -> Result:
    raw_cols, values, truncated = _decode_fast(body)
    key = bytes(raw_cols)
    columns = _COLUMNS.get(key)
    if columns is None:
        if len(_COLUMNS) >= 1024:
            _COLUMNS.clear()
        columns = _COLUMNS[key] = tuple(Column(n, d) for n, d in _decode_columns(key))
    return Result(columns, values, truncated=truncated, cached=True)


def _result(payload: _Payload, *, cached: bool) -> Result:
    cols, values, truncated = payload
    return Result(
        tuple(Column(name, decltype) for name, decltype in cols),
        list(values),
        truncated=truncated,
        cached=cached,
    )
