"""Ops: health, readiness, Prometheus metrics, memory state and actions, dashboard data."""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any, Literal

import msgspec
from litestar import MediaType, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, QueryParameter

from ...auth import Role
from ...errors import DatabaseError, InvalidRequest, ReplicaLagging, StorageFault
from ...storage.health import probe
from ..errors import OK, responses
from ..state import ESSENTIAL_OPT, ROLE_OPT, AppState
from ..sync_routes import replication_health

__all__ = ["OptimizeRequest", "route_handlers", "stats"]

log = logging.getLogger("edgestore.web")

_LEVELS = ("normal", "warning", "critical", "emergency")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class HealthOut(msgspec.Struct):
    status: str


class ReadyOut(msgspec.Struct):
    status: str
    database: str
    pool: dict[str, Any]
    memory_level: str
    replication: dict[str, Any] | None = None


class OptimizeRequest(msgspec.Struct, forbid_unknown_fields=True):
    level: Literal["light", "standard", "aggressive", "emergency"] = "standard"


def _rss_fallback() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _level_name(state: AppState) -> str:
    memory = state.memory
    if memory is None:
        return "normal"
    level = memory.level
    name = getattr(level, "name", None) or str(level)
    return str(name).lower()


def _level_number(name: str) -> int:
    return _LEVELS.index(name) if name in _LEVELS else 0


def _number(d: Mapping[str, Any], *keys: str) -> float | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


def _cache_figures(raw: Mapping[str, Any]) -> tuple[float, float, float]:
    """(bytes, hit ratio, entries) from ``store.cache_stats()``, flat or split per tier."""
    size = _number(raw, "bytes", "currsize", "size_bytes")
    hits = _number(raw, "hits")
    misses = _number(raw, "misses")
    entries = _number(raw, "entries", "items", "count")
    if size is None:  # split per cache (query/kv/...): add the parts up
        size, hits, misses, entries = 0.0, 0.0, 0.0, 0.0
        for part in raw.values():
            if isinstance(part, Mapping):
                size += _number(part, "bytes", "currsize", "size_bytes") or 0.0
                hits += _number(part, "hits") or 0.0
                misses += _number(part, "misses") or 0.0
                entries += _number(part, "entries", "items", "count") or 0.0
    ratio = _number(raw, "hit_ratio")
    if ratio is None:
        total = (hits or 0.0) + (misses or 0.0)
        ratio = (hits or 0.0) / total if total else 0.0
    return size, ratio, entries or 0.0


def _pool_dict(state: AppState) -> dict[str, Any]:
    stats = state.store.pool.stats()
    if is_dataclass(stats) and not isinstance(stats, type):
        return asdict(stats)
    return dict(stats) if isinstance(stats, Mapping) else {}


def stats(state: AppState) -> dict[str, Any]:
    """The figures shown on the dashboard and in /metrics."""
    memory = state.memory
    rss = memory.rss() if memory is not None else _rss_fallback()
    budget = getattr(memory, "budget", None) if memory is not None else None
    level = _level_name(state)
    # A closed store (during shutdown) reports zeros: a scrape never fails.
    try:
        cache_bytes, hit_ratio, entries = _cache_figures(state.store.cache_stats())
    except Exception:  # a figure missing from a scrape beats a failed scrape
        log.debug("cache figures unavailable", exc_info=True)
        cache_bytes, hit_ratio, entries = 0.0, 0.0, 0.0
    try:
        pool = _pool_dict(state)
    except Exception:
        log.debug("pool figures unavailable", exc_info=True)
        pool = {}
    return {
        "time": time.time(),
        "uptime_seconds": time.time() - state.started_at,
        "memory_rss_bytes": rss,
        "memory_budget_bytes": budget,
        "memory_pressure_level": _level_number(level),
        "memory_level": level,
        "cache_bytes": cache_bytes,
        "cache_max_bytes": state.settings.cache_max_bytes,
        "cache_entries": entries,
        "cache_hit_ratio": hit_ratio,
        "pool_connections": pool.get("connections_open", 0),
        "pool_max_connections": pool.get("max_connections", 0),
        "requests_total": state.metrics.requests_total,
        "hot_cache_hits": state.hot.hits,
        "hot_cache_bytes": state.hot.bytes,
    }


async def _replication_health(state: AppState) -> dict[str, Any] | None:
    return await replication_health(state)


async def replication_lag(state: AppState) -> float | None:
    """Seconds a replica is behind its primary (0 on a primary; None without replication)."""
    try:
        health = await _replication_health(state)
    except Exception:  # the dashboard's figure, never worth failing for
        log.debug("replication status unavailable", exc_info=True)
        return None
    if not health:
        return None
    if health.get("role") == "primary":
        return 0.0
    lag = health.get("lag_seconds")
    return float(lag) if isinstance(lag, int | float) else None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    essential = {ESSENTIAL_OPT: True}
    essential_ro = {**essential, ROLE_OPT: Role.RO}
    essential_admin = {**essential, ROLE_OPT: Role.ADMIN}

    def monitor() -> Any:
        """The running memory monitor; InvalidRequest when there is none to act on."""
        if state.memory is None:
            raise InvalidRequest("the memory monitor is not running")
        return state.memory

    @get("/health", opt=essential, tags=["ops"], summary="Liveness (cheap)")
    async def health() -> HealthOut:
        return HealthOut("ok")

    @get(
        "/health/ready",
        opt=essential,
        tags=["ops"],
        summary="Readiness: database reachable, pool state, memory level",
        responses=responses(),
    )
    async def ready() -> ReadyOut:
        try:
            # Reads the schema page (the file itself must be readable, not just SQLite alive)
            # and queues behind no caller: holders of every reader cannot make it look dead.
            await probe(state.store)
        except DatabaseError as exc:
            # Whatever SQLite says here, the caller asked nothing wrong: this server is not
            # ready (503, so a load balancer takes it out), even for a fault no retry mends.
            fault = StorageFault(
                f"the database is not ready: {exc.detail}", code=exc.code, base_code=exc.base_code
            )
            fault.transient = True
            raise fault from exc
        replication = await _replication_health(state)
        if replication is not None and not replication.get("ok", True):
            raise ReplicaLagging(
                f"replica behind the primary by more than "
                f"{state.settings.max_replication_lag}s: {replication}"
            )
        return ReadyOut("ok", "ok", _pool_dict(state), _level_name(state), replication)

    @get(
        "/metrics",
        opt=essential_ro,
        tags=["ops"],
        summary="Prometheus metrics (text exposition format, with process_* metrics)",
        media_type=MediaType.TEXT,
        responses=responses(),
    )
    async def metrics() -> Response[bytes]:
        # Imported at the first scrape: a server nobody scrapes does not carry it.
        from ..exposition import CONTENT_TYPE, render

        # Litestar appends "; charset=utf-8" to every text/* type itself.
        return Response(
            content=render(state), media_type=CONTENT_TYPE.replace("; charset=utf-8", "")
        )

    @get(
        "/api/v1/stats",
        opt=essential_ro,
        tags=["ops"],
        summary="Live figures for the dashboard",
        responses=responses(),
    )
    async def live_stats() -> dict[str, Any]:
        return stats(state)

    @get(
        "/api/v1/memory",
        opt=essential_ro,
        tags=["ops"],
        summary="Memory state: RSS, budget, level, cache",
        responses=responses(),
    )
    async def memory() -> dict[str, Any]:
        if state.memory is None:
            return {"rss": _rss_fallback(), "level": "normal", "monitor": False}
        return dict(state.memory.snapshot())

    @post(
        "/api/v1/memory/optimize",
        status_code=OK,
        opt=essential_admin,
        tags=["ops"],
        summary="Run the actions of a pressure level now",
        responses=responses(),
    )
    async def optimize(data: JSONBody[OptimizeRequest]) -> dict[str, Any]:
        running = monitor()
        result = await _maybe_await(running.optimize(data.level))
        return {
            "level": data.level,
            "result": result if isinstance(result, dict) else None,
            "memory": dict(running.snapshot()),
        }

    @delete(
        "/api/v1/memory/cache",
        status_code=OK,
        opt=essential_admin,
        tags=["ops"],
        summary="Clear the query cache, the key/value cache, or both",
        responses=responses(),
    )
    async def clear_cache(
        target: Annotated[
            Literal["query", "kv", "all"], QueryParameter(description="Which cache to clear")
        ] = "all",
    ) -> dict[str, Any]:
        running = monitor()
        if target in ("query", "all"):
            state.hot.clear()
        result = await _maybe_await(running.clear(target))
        return {"cleared": target, "result": result if isinstance(result, dict) else None}

    @get(
        "/api/v1/history",
        opt=essential_ro,
        tags=["ops"],
        summary="The dashboard's last hour (1 s samples for 5 minutes, 10 s before that), the "
        "slowest statements and per-table reads and writes",
        responses=responses(),
    )
    async def history() -> dict[str, Any]:
        kept, queries = state.history, state.queries
        return {
            "columns": kept.columnar() if kept is not None else {},
            "slowest": queries.slowest(10) if queries is not None else [],
            "tables": queries.tables() if queries is not None else [],
        }

    return [health, ready, metrics, live_stats, memory, optimize, clear_cache, history]
