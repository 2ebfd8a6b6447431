"""MemoryMonitor: RSS against a budget, pressure levels with hysteresis, actions per level.

Levels: NORMAL below 70% of the budget, WARNING from 70%, CRITICAL from 85%, EMERGENCY from
95%. Going up is immediate; going down needs the ratio to fall ``hysteresis`` (default 5
points) below the threshold of the level being left, so a process hovering at 70% does not
flap between levels.

Actions are registered per level (:meth:`MemoryMonitor.register`) and run when the level is
entered from below. The defaults:

- WARNING: cache cap to 75% of its configured size, garbage collection;
- CRITICAL: cache cap to 50%, garbage collection, close idle SQLite connections;
- EMERGENCY: empty the query and key/value caches, garbage collection, close idle
  connections; ``refuse_non_essential`` is true while the level lasts (the web layer answers
  503 + Retry-After to non-essential requests; health and metrics keep answering).

Recovery is step-wise: after the level falls, the cache cap grows back by 25% of its
configured size per sample until it reaches the cap the level allows.

The figure the levels act on is the whole server's RSS (``edgestore.memory.accounting``):
this process plus, with several workers, granian's master and the sibling workers. Each
sample also splits it by component for ``/api/v1/memory`` and the metrics.

Memory comes back after load: once ``activity()`` (the web layer's request counter) has not
moved for ``IDLE_RELEASE_AFTER`` seconds, the monitor collects garbage and hands free heap
pages back to the OS (``malloc_trim``), once per quiet period. Without this the allocator
keeps the high-water mark of the last burst for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from ..config import MiB, Settings
from ..errors import InvalidRequest
from ..storage.dark import release_memory
from .accounting import Breakdown, measure, server_rss
from .sampler import cgroup_limit

if TYPE_CHECKING:
    from ..cache import CompressedLRU

__all__ = ["DEFAULT_BUDGET", "Level", "MemoryMonitor", "MemorySnapshot", "OptimizeLevel"]

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 512 * MiB
OptimizeLevel = Literal["light", "standard", "aggressive", "emergency"]
ClearTarget = Literal["query", "kv", "all"]
Action = Callable[[], Awaitable[Any] | Any]


class Level(enum.IntEnum):
    NORMAL = 0
    WARNING = 1
    CRITICAL = 2
    EMERGENCY = 3

    @property
    def label(self) -> str:
        return self.name.lower()


THRESHOLDS = {Level.WARNING: 0.70, Level.CRITICAL: 0.85, Level.EMERGENCY: 0.95}
# Share of the configured cache cap each level allows.
CACHE_SHARE = {Level.NORMAL: 1.0, Level.WARNING: 0.75, Level.CRITICAL: 0.5, Level.EMERGENCY: 0.5}
RECOVERY_STEP = 0.25
IDLE_RELEASE_AFTER = 2.0
# Trim the C heap during load too once this much of it is free but kept (fragmentation left
# by evicted cache values and finished requests); malloc_trim takes ~1 ms on a 50 MB heap.
TRIM_FREE_MIN = 4 * MiB
_OPTIMIZE: dict[str, Level] = {
    "standard": Level.WARNING,
    "aggressive": Level.CRITICAL,
    "emergency": Level.EMERGENCY,
}


class MemorySnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The monitor's state (``GET /api/v1/memory``; the field names are its JSON keys)."""

    level: str
    """``normal``, ``warning``, ``critical`` or ``emergency``."""
    level_value: int
    """0 normal .. 3 emergency."""
    rss_bytes: int
    """The whole server's RSS at the last sample (every process of it)."""
    peak_rss_bytes: int
    budget_bytes: int
    ratio: float
    """``rss_bytes / budget_bytes``."""
    cgroup_limit_bytes: int | None
    thresholds: dict[str, float]
    """The share of the budget at which each level starts."""
    refuse_non_essential: bool
    cache_max_bytes: int | None
    """The cache cap now (None: no cache managed)."""
    cache_base_bytes: int | None
    """The configured cache cap the levels take shares of."""
    cache_bytes: int | None
    samples: int
    transitions: int
    since: float
    """Unix time of the last level change."""
    last_actions: list[str]
    idle_releases: int
    heap_trims: int
    breakdown: Breakdown | None
    """The last accounting by process and component (None before the first sample)."""


@dataclass(frozen=True, slots=True)
class _Registered:
    name: str
    fn: Action


class MemoryMonitor:
    """Samples RSS every ``settings.memory_sample_interval`` seconds and reacts to pressure.

    ``store`` (optional) provides the caches (``store.read_cache``) and
    ``close_idle()``; ``lru`` overrides the cache whose cap is managed. ``rss`` and ``budget``
    can be injected (tests); by default RSS comes from ``/proc/self/statm`` and the budget from
    ``settings.memory_budget_bytes``, else the cgroup limit, else 512 MiB.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        store: Any = None,
        *,
        lru: CompressedLRU | None = None,
        rss: Callable[[], int] | None = None,
        budget: int | None = None,
        hysteresis: float = 0.05,
        default_actions: bool = True,
        activity: Callable[[], int] | None = None,
        stream_bytes: Callable[[], int] | None = None,
        server_root: int | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.store = store
        self.cgroup_limit = cgroup_limit()
        self.budget: int = (
            budget or self.settings.memory_budget_bytes or self.cgroup_limit or DEFAULT_BUDGET
        )
        self._rss = rss
        self._activity = activity
        self._stream_bytes = stream_bytes
        self.server_root = server_root
        self.breakdown: Breakdown | None = None
        self._last_activity: int | None = None
        self._quiet_since = time.monotonic()
        self._released = True
        self.releases = 0
        self.trims = 0
        self.hysteresis = hysteresis
        if lru is None and store is not None:
            # The store's read cache (a StoreCache when edgestore.open attached one).
            lru = getattr(getattr(store, "read_cache", None), "lru", None)
        self.lru = lru
        self.cache_base = lru.maxsize if lru is not None else 0
        self.level = Level.NORMAL
        self.last_rss = 0
        self.peak_rss = 0
        self.samples = 0
        self.transitions = 0
        self.changed_at = time.time()
        self.last_actions: list[str] = []
        self._actions: dict[Level, list[_Registered]] = {lv: [] for lv in Level}
        self._task: asyncio.Task[None] | None = None
        if default_actions:
            self._register_defaults()

    # --- figures ----------------------------------------------------------------------

    def rss(self) -> int:
        """Current RSS of the whole server (bytes): every process of it."""
        if self._rss is not None:
            return int(self._rss())
        return server_rss(self.server_root)

    def measure(self) -> Breakdown:
        """Account for the server's memory now, by process and component."""
        lru = self.lru
        pool = getattr(self.store, "pool", None)
        conns: list[tuple[str, Any]] = []
        if pool is not None:
            conns.extend((c.role, c.db) for c in pool.inspectable_connections())
        self.breakdown = measure(
            server_root=self.server_root,
            cache_bytes=lru.currsize if lru is not None else 0,
            stream_bytes=self._stream_bytes() if self._stream_bytes is not None else 0,
            connections=conns,
        )
        return self.breakdown

    def release_if_quiet(self, now: float | None = None) -> bool:
        """Collect garbage and trim the heap once activity has stopped for a while."""
        if self._activity is None:
            return False
        now = time.monotonic() if now is None else now
        seen = self._activity()
        if seen != self._last_activity:
            self._last_activity = seen
            self._quiet_since = now
            self._released = False
            return False
        if self._released or now - self._quiet_since < IDLE_RELEASE_AFTER:
            return False
        self._released = True
        self.releases += 1
        gc.collect()
        release_memory()
        return True

    @property
    def refuse_non_essential(self) -> bool:
        """True while in EMERGENCY: refuse work that is not health, metrics or admin."""
        return self.level is Level.EMERGENCY

    def snapshot(self) -> MemorySnapshot:
        """Figures for metrics and the dashboard."""
        lru = self.lru
        return MemorySnapshot(
            level=self.level.label,
            level_value=int(self.level),
            rss_bytes=self.last_rss,
            peak_rss_bytes=self.peak_rss,
            budget_bytes=self.budget,
            ratio=round(self.last_rss / self.budget, 4) if self.budget else 0.0,
            cgroup_limit_bytes=self.cgroup_limit,
            thresholds={lv.label: t for lv, t in THRESHOLDS.items()},
            refuse_non_essential=self.refuse_non_essential,
            cache_max_bytes=lru.maxsize if lru is not None else None,
            cache_base_bytes=self.cache_base if lru is not None else None,
            cache_bytes=lru.currsize if lru is not None else None,
            samples=self.samples,
            transitions=self.transitions,
            since=self.changed_at,
            last_actions=list(self.last_actions),
            idle_releases=self.releases,
            heap_trims=self.trims,
            breakdown=self.breakdown,
        )

    # --- actions ----------------------------------------------------------------------

    def register(self, level: Level, fn: Action, *, name: str | None = None) -> None:
        """Run ``fn()`` (sync or async) whenever ``level`` is entered from below."""
        label = name or str(getattr(fn, "__name__", "action"))
        self._actions[level].append(_Registered(label, fn))

    def actions(self, level: Level) -> list[str]:
        return [a.name for a in self._actions[level]]

    async def optimize(self, level: OptimizeLevel | str) -> list[str]:
        """Run a level's actions now: light (gc, expired entries), standard (WARNING's),
        aggressive (CRITICAL's) or emergency (EMERGENCY's). Returns the actions run."""
        if level == "light":
            done = ["collect_garbage"]
            gc.collect()
            if self.lru is not None:
                self.lru.expire()
                done.append("drop_expired")
            self.last_actions = done
            return done
        target = _OPTIMIZE.get(level)
        if target is None:
            raise InvalidRequest(
                f"optimize level must be light, standard, aggressive or emergency, not {level!r}"
            )
        return await self._run(target, forced=True)

    def clear(self, target: ClearTarget | str = "all") -> int:
        """Empty the query cache, the key/value cache or both; returns entries removed."""
        if target not in ("query", "kv", "all"):
            raise InvalidRequest(f"clear target must be query, kv or all, not {target!r}")
        lru = self.lru
        if lru is None:
            return 0
        if target == "all":
            n = len(lru)
            lru.clear()
            return n
        kind = bytes if target == "query" else str
        return lru.delete_where(lambda k: type(k) is kind)

    # --- sampling ---------------------------------------------------------------------

    def classify(self, ratio: float) -> Level:
        """The level for ``ratio`` given the current level (hysteresis on the way down)."""
        up = Level.NORMAL
        for lv, threshold in THRESHOLDS.items():
            if ratio >= threshold:
                up = lv
        if up >= self.level:
            return up
        lv = self.level
        while lv > Level.NORMAL and ratio < THRESHOLDS[lv] - self.hysteresis:
            lv = Level(lv - 1)
        return lv

    async def tick(self) -> Level:
        """Take one sample, move between levels, run the actions due, adjust the cache cap."""
        self.release_if_quiet()
        if self._rss is None:
            rss = self.measure().total_bytes
            if self.breakdown is not None and self._trim_due(self.breakdown):
                release_memory()
                self.trims += 1
                rss = self.measure().total_bytes
        else:
            rss = self.rss()
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        self.samples += 1
        new = self.classify(rss / self.budget)
        old = self.level
        if new != old:
            self.level = new
            self.transitions += 1
            self.changed_at = time.time()
            log.log(
                logging.WARNING if new > old else logging.INFO,
                "memory pressure %s -> %s (rss %d MiB of %d MiB)",
                old.label,
                new.label,
                rss // MiB,
                self.budget // MiB,
            )
            if new > old:
                await self._run(new)
        self._adjust_cap()
        return self.level

    @staticmethod
    def _trim_due(breakdown: Breakdown) -> bool:
        free = breakdown.components.allocator_free
        return free >= TRIM_FREE_MIN and free >= breakdown.own_rss_bytes // 20

    async def start(self) -> None:
        """Sample in the background until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        interval = self.settings.memory_sample_interval
        while True:
            try:
                await self.tick()
            except Exception:  # a failed sample must not stop the monitor
                log.exception("memory sample failed")
            await asyncio.sleep(interval)

    # --- internals --------------------------------------------------------------------

    async def _run(self, level: Level, *, forced: bool = False) -> list[str]:
        done = []
        for action in self._actions[level]:
            try:
                out = action.fn()
                if inspect.isawaitable(out):
                    await out
                done.append(action.name)
            except Exception:
                log.exception("memory action %s failed", action.name)
        if forced:
            self._shrink_to(CACHE_SHARE[level])
        self.last_actions = done
        return done

    def _shrink_to(self, share: float) -> None:
        lru = self.lru
        if lru is not None:
            cap = int(self.cache_base * share)
            if lru.maxsize > cap:
                lru.resize(cap)

    def _adjust_cap(self) -> None:
        lru = self.lru
        if lru is None:
            return
        allowed = int(self.cache_base * CACHE_SHARE[self.level])
        cap = lru.maxsize
        if cap > allowed:
            lru.resize(allowed)
        elif cap < allowed:
            lru.resize(min(allowed, cap + int(self.cache_base * RECOVERY_STEP)))

    def _register_defaults(self) -> None:
        def shrink_cache() -> None:
            self._shrink_to(CACHE_SHARE[self.level])

        def collect_garbage() -> None:
            gc.collect()

        async def close_idle_connections() -> None:
            close = getattr(self.store, "close_idle", None)
            if close is not None:
                await close()

        def clear_caches() -> None:
            self.clear("all")

        self.register(Level.WARNING, shrink_cache)
        self.register(Level.WARNING, collect_garbage)
        self.register(Level.CRITICAL, shrink_cache)
        self.register(Level.CRITICAL, collect_garbage)
        self.register(Level.CRITICAL, close_idle_connections)
        self.register(Level.EMERGENCY, clear_caches)
        self.register(Level.EMERGENCY, collect_garbage)
        self.register(Level.EMERGENCY, close_idle_connections)
