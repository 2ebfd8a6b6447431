"""Ops: health, readiness, Prometheus metrics, memory state and actions, dashboard data."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import msgspec
from litestar import MediaType, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, QueryParameter

from ...auth import Role
from ...errors import DatabaseError, InvalidRequest, ReplicaLagging, StorageFault
from ...memory import MemoryMonitor, MemorySnapshot
from ...replication import PrimaryHealth, ReplicaStatus
from ...storage import PoolStats
from ...storage.health import probe
from ..errors import OK, responses
from ..figures import LiveStats, live_stats, pool_stats
from ..state import ESSENTIAL_OPT, ROLE_OPT, AppState
from ..sync_routes import replication_health

__all__ = ["OptimizeRequest", "replication_lag", "route_handlers"]

log = logging.getLogger("edgestore.web")


class HealthOut(msgspec.Struct):
    status: str


class ReadyOut(msgspec.Struct):
    status: str
    database: str
    pool: PoolStats | None
    memory_level: str
    replication: PrimaryHealth | ReplicaStatus | None = None


class OptimizeRequest(msgspec.Struct, forbid_unknown_fields=True):
    level: Literal["light", "standard", "aggressive", "emergency"] = "standard"


class OptimizeOut(msgspec.Struct):
    level: str
    result: list[str]
    """The actions run."""
    memory: MemorySnapshot


class ClearOut(msgspec.Struct):
    cleared: str
    result: int
    """Entries removed from the shared cache."""


async def replication_lag(state: AppState) -> float | None:
    """Seconds a replica is behind its primary (0 on a primary; None without replication)."""
    try:
        health = await replication_health(state)
    except Exception:  # the dashboard's figure, never worth failing for
        log.debug("replication status unavailable", exc_info=True)
        return None
    if isinstance(health, PrimaryHealth):
        return 0.0
    return health.lag_seconds if health is not None else None


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    essential = {ESSENTIAL_OPT: True}
    essential_ro = {**essential, ROLE_OPT: Role.RO}
    essential_admin = {**essential, ROLE_OPT: Role.ADMIN}

    def monitor() -> MemoryMonitor:
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
        replication = await replication_health(state)
        if replication is not None and not replication.ok:
            raise ReplicaLagging(
                f"replica behind the primary by more than "
                f"{state.settings.max_replication_lag}s: {replication}"
            )
        memory = state.memory
        level = memory.level.label if memory is not None else "normal"
        return ReadyOut("ok", "ok", pool_stats(state), level, replication)

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
    async def stats() -> LiveStats:
        return live_stats(state)

    @get(
        "/api/v1/memory",
        opt=essential_ro,
        tags=["ops"],
        summary="Memory state: RSS, budget, level, cache",
        responses=responses(),
    )
    async def memory() -> MemorySnapshot:
        return monitor().snapshot()

    @post(
        "/api/v1/memory/optimize",
        status_code=OK,
        opt=essential_admin,
        tags=["ops"],
        summary="Run the actions of a pressure level now",
        responses=responses(),
    )
    async def optimize(data: JSONBody[OptimizeRequest]) -> OptimizeOut:
        running = monitor()
        done = await running.optimize(data.level)
        return OptimizeOut(data.level, done, running.snapshot())

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
    ) -> ClearOut:
        running = monitor()
        if target in ("query", "all"):
            state.hot.clear()
        return ClearOut(target, running.clear(target))

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

    return [health, ready, metrics, stats, memory, optimize, clear_cache, history]
