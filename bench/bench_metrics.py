"""What request metrics cost per request, against the server's cost of a point read.

1. The per-request work of the metrics (``Metrics.observe``: counter + histogram, as the
   middleware calls it), timed in-process over many calls with realistic labels.
2. A served point read (GET /api/v1/tables/items/rows/1, query cache off) under ``wrk``:
   the server's CPU time per request, from its own CPU counters.
3. The statement profile behind the dashboard's slowest statements and per-table counts
   (``edgestore.web.query_stats``): uncached primary-key reads through the store, in one
   process, on a store with the profile attached vs one without (alternating runs).

Prints the ratios; target <= 2% of a point read. Median of RUNS runs.

    .venv/bin/python bench/bench_metrics.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import edgestore
from bench_http import seed
from bench_server_modes import measured
from edgestore.config import Settings
from edgestore.web.metrics import Metrics
from edgestore.web.query_stats import QueryStats
from servers import edgestore_cmd, edgestore_env, server

RUNS = 5
CALLS = 200_000
ROUTES = [
    ("GET", "/api/v1/tables/{table_name}/rows/{key}", 200),
    ("POST", "/api/v1/query", 200),
    ("GET", "/health", 200),
    ("POST", "/v3/pipeline", 200),
]


def observe_cost() -> float:
    """Microseconds per Metrics.observe call."""
    m = Metrics()
    calls = [ROUTES[i % len(ROUTES)] for i in range(CALLS)]
    t0 = time.perf_counter()
    for method, route, status in calls:
        m.observe(method, route, status, 0.0004)
    return 1e6 * (time.perf_counter() - t0) / CALLS


async def _reads(store: Any, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await store.query("SELECT * FROM items WHERE id = ?", (1 + i % 1000,), cache=False)
    return 1e6 * (time.perf_counter() - t0) / n


async def profile_cost(db: Path) -> tuple[float, float]:
    """(us per point read without the profile, with it), medians of alternating runs."""
    settings = Settings(db_path=db, query_cache=False)
    plain = await edgestore.open(settings=settings)
    profiled = await edgestore.open(settings=settings)
    QueryStats().attach(profiled)
    a: list[float] = []
    b: list[float] = []
    try:
        await _reads(plain, 2000)
        await _reads(profiled, 2000)
        for _ in range(RUNS):
            a.append(await _reads(plain, 20_000))
            b.append(await _reads(profiled, 20_000))
    finally:
        await plain.close()
        await profiled.close()
    return statistics.median(a), statistics.median(b)


def main() -> None:
    costs = [observe_cost() for _ in range(RUNS)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "bench.db"
        with server(edgestore_cmd(db), edgestore_env(db), work, "/health"):
            pass
        seed(db)
        env = edgestore_env(db, EDGESTORE_QUERY_CACHE="false")
        with server(edgestore_cmd(db), env, work, "/health") as url:
            pid = url.pid
            measured(url + "/api/v1/tables/items/rows/1", pid)  # warm up
            reads = [measured(url + "/api/v1/tables/items/rows/1", pid) for _ in range(RUNS)]
        plain, profiled = asyncio.run(profile_cost(db))
    cost = statistics.median(costs)
    per_read = statistics.median(cpu for _, cpu in reads)
    print(f"metrics per request: {cost:.2f} us (runs {[round(c, 2) for c in costs]})")
    print(
        f"uncached point read served: {per_read:.1f} us CPU per request "
        f"({statistics.median(r for r, _ in reads):.0f} req/s)"
    )
    print(f"metrics / point read: {100 * cost / per_read:.2f}% (target <= 2%)")
    print(
        f"statement profile: store point read {plain:.1f} us without, {profiled:.1f} us with "
        f"(+{profiled - plain:.2f} us); of a served uncached point read "
        f"{100 * (profiled - plain) / per_read:.2f}%"
    )


if __name__ == "__main__":
    sys.exit(main())
