"""Memory of a big Hrana cursor: rows are streamed a chunk at a time, never held whole.

In-process (no server): peak Python heap (tracemalloc) while ``HranaHttp.cursor`` produces
the body of a 100,000-row ``/v3/cursor`` response, against the baseline of the same SELECT
read whole with ``store.query(..., cache=False)`` (what a non-streaming cursor held before it
wrote anything). Also the time to produce the body. Medians of RUNS runs.

    .venv/bin/python bench/bench_hrana_cursor.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import edgestore
from edgestore.hrana import HranaHttp

RUNS = 5
ROWS = 100_000
SQL = "SELECT i, s FROM t"


async def _peak(work: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(peak heap MB above the start, seconds, result) of ``work``."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    began = time.perf_counter()
    out = await work()
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 1e6, seconds, out


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await edgestore.open(Path(tmp) / "bench.db", schemas_dir=None)
        await store.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, s TEXT)")
        await store.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO t SELECT i, printf('row-%06d-%s', i, hex(randomblob(16))) FROM n",
            [ROWS],
        )
        http = HranaHttp(store)
        body = json.dumps({"baton": None, "batch": {"steps": [{"stmt": {"sql": SQL}}]}}).encode()

        async def cursor() -> int:
            sent = 0
            async for chunk in http.cursor(body, owner="bench", readonly=False):
                sent += len(chunk)
            return sent

        async def whole() -> int:
            return len((await store.query(SQL, cache=False)).values)

        ours: list[tuple[float, float, int]] = []
        base: list[tuple[float, float, int]] = []
        for _ in range(RUNS):
            base.append(await _peak(whole))
            ours.append(await _peak(cursor))
        await http.close()
        await store.close()
    ours_mb = statistics.median(r[0] for r in ours)
    base_mb = statistics.median(r[0] for r in base)
    ours_s = statistics.median(r[1] for r in ours)
    print(f"{ROWS} rows, {ours[0][2] / 1e6:.1f} MB of NDJSON, medians of {RUNS} (tracemalloc on)")
    print(
        f"peak heap  cursor {ours_mb:8.2f} MB   whole result {base_mb:8.2f} MB   "
        f"ratio {ours_mb / base_mb:.3f}x   cursor body in {ours_s * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
