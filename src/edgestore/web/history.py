"""The dashboard's history, kept by the server in constant memory: the last hour.

One sample per second of every figure the dashboard draws (memory by component, cache,
requests and latency per route family, errors by status, pool, replication lag). The last
FINE_POINTS samples are kept at 1 s; older ones are merged ten at a time into COARSE_POINTS
samples of 10 s (an hour in all). Both tiers are ``deque(maxlen=...)`` of small tuples, so
the history never grows: ~650 rows of ~40 numbers, a few hundred KB at most.

Rates (requests, hits, misses, errors) are per second over the sample's interval; latency
quantiles are estimated from the request histograms' bucket counts within the interval
(linear inside a bucket, as Prometheus' ``histogram_quantile`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from ..memory import Components
from ..storage import PoolStats
from .figures import cache_stats, pool_stats
from .metrics import BUCKETS

if TYPE_CHECKING:
    from .state import AppState

__all__ = ["FAMILIES", "History", "family_of"]

log = logging.getLogger("edgestore.web")

FINE_POINTS = 300
COARSE_EVERY = 10
COARSE_POINTS = 330
FAMILIES = ("tables", "sql", "hrana", "cache", "ops", "other")
COMPONENTS: tuple[str, ...] = Components.__struct_fields__
"""The memory breakdown's components, in the order of its fields."""
STATUSES = ("4xx", "5xx")


def family_of(route: str) -> str:
    """The route family a route template belongs to (the dashboard's grouping)."""
    if route.startswith("/api/v1/tables"):
        return "tables"
    if route.startswith(("/api/v1/query", "/api/v1/execute", "/api/v1/batch")):
        return "sql"
    if route.startswith(("/v1/", "/v2", "/v3")) or route == "/":
        return "hrana"
    if route.startswith("/api/v1/cache"):
        return "cache"
    if route.startswith(("/health", "/metrics", "/api/v1/", "/dashboard", "/schema")):
        return "ops"
    return "other"


def _quantile(counts: list[int], q: float) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    low = 0.0
    for i, n in enumerate(counts):
        high = BUCKETS[i] if i < len(BUCKETS) else BUCKETS[-1] * 2
        if seen + n >= rank and n:
            return low + (high - low) * (rank - seen) / n
        seen += n
        low = high
    return BUCKETS[-1]


@dataclass(frozen=True, slots=True)
class _Reading:
    """The cumulative figures at one instant; a sample is the difference of two."""

    time: float
    families: dict[str, int]
    """Requests so far by route family."""
    errors: dict[str, int]
    """4xx and 5xx answers so far."""
    hist: dict[str, list[int]]
    """Latency bucket counts so far by route family."""
    hits: int
    misses: int
    cache_bytes: int
    cache_cap: int
    pool: PoolStats | None
    websockets: int
    """Open now."""


class History:
    """Samples the app's figures every second into two fixed-size tiers."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.columns: list[str] = self._column_names()
        self.fine: deque[tuple[float | None, ...]] = deque(maxlen=FINE_POINTS)
        self.coarse: deque[tuple[float | None, ...]] = deque(maxlen=COARSE_POINTS)
        self._pending: list[tuple[float | None, ...]] = []
        self._prev: _Reading | None = None
        self._task: asyncio.Task[None] | None = None
        self.lag: float | None = None

    @staticmethod
    def _column_names() -> list[str]:
        cols = ["time", "rss", "budget"]
        cols += [f"mem_{c}" for c in COMPONENTS]
        cols += ["cache_bytes", "cache_cap", "hits", "misses"]
        cols += [f"rps_{f}" for f in FAMILIES]
        cols += ["p50", "p95", "p99"] + [f"p95_{f}" for f in FAMILIES]
        cols += [f"err_{s}" for s in STATUSES]
        cols += ["readers_busy", "waits", "group_size", "writes_pending", "lag", "websockets"]
        return cols

    # --- sampling ---------------------------------------------------------------------

    def _raw(self) -> _Reading:
        state = self.state
        m = state.metrics
        per_family: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        errors: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for (_, route, status), n in m.requests.items():
            per_family[family_of(route)] += n
            if 400 <= status < 500:
                errors["4xx"] += n
            elif status >= 500:
                errors["5xx"] += n
        hist: dict[str, list[int]] = {f: [0] * (len(BUCKETS) + 1) for f in FAMILIES}
        for (_, route), h in m.latency.items():
            counts = hist[family_of(route)]
            for i, n in enumerate(h.counts):
                counts[i] += n
        cache = cache_stats(state)
        return _Reading(
            time=time.time(),
            families=per_family,
            errors=errors,
            hist=hist,
            hits=cache.query.hits if cache is not None else 0,
            misses=cache.query.misses if cache is not None else 0,
            cache_bytes=cache.bytes if cache is not None else 0,
            cache_cap=cache.max_bytes if cache is not None else 0,
            pool=pool_stats(state),
            websockets=m.websockets_opened - m.websockets_closed,
        )

    def sample(self) -> None:
        """Take one sample now (the background task calls it every second)."""
        raw = self._raw()
        prev = self._prev
        self._prev = raw
        if prev is None:
            return
        dt = max(1e-3, raw.time - prev.time)

        def rate(now: float, before: float) -> float:
            return max(0.0, float(now - before) / dt)

        memory = self.state.memory
        snap = memory.snapshot() if memory is not None else None
        breakdown = snap.breakdown if snap is not None else None
        row: list[float | None] = [
            raw.time,
            snap.rss_bytes if snap is not None else None,
            snap.budget_bytes if snap is not None else None,
        ]
        if breakdown is not None:
            row += msgspec.structs.astuple(breakdown.components)
        else:
            row += [None] * len(COMPONENTS)
        row += [raw.cache_bytes, raw.cache_cap]
        row += [rate(raw.hits, prev.hits), rate(raw.misses, prev.misses)]
        row += [rate(raw.families[f], prev.families[f]) for f in FAMILIES]
        total = [0] * (len(BUCKETS) + 1)
        fam_p95: list[float | None] = []
        for f in FAMILIES:
            delta = [a - b for a, b in zip(raw.hist[f], prev.hist[f], strict=True)]
            total = [a + b for a, b in zip(total, delta, strict=True)]
            fam_p95.append(_ms(_quantile(delta, 0.95)))
        row += [_ms(_quantile(total, q)) for q in (0.5, 0.95, 0.99)] + fam_p95
        row += [rate(raw.errors[s], prev.errors[s]) for s in STATUSES]
        pool, before = raw.pool, prev.pool
        if pool is not None and before is not None:
            commits = pool.group_commits - before.group_commits
            grouped = pool.grouped_writes - before.grouped_writes
            row += [
                pool.readers_busy,
                rate(pool.waits, before.waits),
                grouped / commits if commits else None,
                pool.writes_pending,
            ]
        else:
            row += [None, None, None, None]
        row += [self.lag, raw.websockets]
        self._add(tuple(row))

    def _add(self, row: tuple[float | None, ...]) -> None:
        if len(self.fine) == self.fine.maxlen:
            self._pending.append(self.fine[0])
            if len(self._pending) >= COARSE_EVERY:
                self.coarse.append(_merge(self._pending))
                self._pending = []
        self.fine.append(row)

    # --- output -----------------------------------------------------------------------

    def columnar(self) -> dict[str, list[float | None]]:
        """The hour as columns (oldest first), coarse tier then fine tier."""
        rows = [*self.coarse, *self.fine]
        return {name: [r[i] for r in rows] for i, name in enumerate(self.columns)}

    # --- background -------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        from .routes.ops import replication_lag

        while True:
            try:
                self.lag = await replication_lag(self.state)
                self.sample()
            except Exception:  # a failed sample must not end the history
                log.exception("dashboard history sample failed")
            await asyncio.sleep(1.0)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _merge(rows: list[tuple[float | None, ...]]) -> tuple[float | None, ...]:
    """Ten 1 s rows as one 10 s row: the last time, the mean of each figure, the max of
    latency quantiles (a spike stays visible)."""
    out: list[float | None] = []
    for i, values in enumerate(zip(*rows, strict=True)):
        nums = [v for v in values if v is not None]
        if i == 0:
            out.append(values[-1])
        elif not nums:
            out.append(None)
        else:
            out.append(sum(nums) / len(nums))
    return tuple(out)
