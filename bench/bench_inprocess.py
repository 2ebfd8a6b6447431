"""CPU per request of the read routes in process: no server, no network, no load generator.

The same workload as bench/bench_reads.py (100,000 rows, a random id per request), driven
straight through the ASGI apps in this process, so what is left is the application's own
cost: edgestore's REST row read, JSON query API and Hrana v2/v3 pipeline, and the bare
Litestar baseline routes (bench/http_baseline_app.py: inline ``sqlite3`` over GET and over
POST with a JSON body). Targets take turns in rounds of REQUESTS requests; each figure is the
median over ROUNDS rounds of the process's CPU time per request. On a shared machine this
moves much less than requests/s, which makes it the figure to optimise by.

    .venv/bin/python bench/bench_inprocess.py                  # every target
    .venv/bin/python bench/bench_inprocess.py --profile hrana2  # and cProfile one of them

``--profile`` prints the functions that took the most time of their own, then what the
route's entry point calls.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench_reads import ROWS, SELECT, make_db

ROUNDS = 9
REQUESTS = 2_000
Message = dict[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


def _scope(method: str, path: str, body: bytes) -> Message:
    headers = [(b"host", b"127.0.0.1:8080"), (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def call(app: ASGIApp, method: str, path: str, body: bytes = b"") -> int:
    """One request through ``app``; its status."""
    sent: list[Message] = []
    request = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Message:
        return request.pop() if request else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_scope(method, path, body), receive, send)
    return int(sent[0]["status"])


async def lifespan(app: ASGIApp) -> Callable[[], Awaitable[None]]:
    """Start ``app``'s lifespan; returns the coroutine function that shuts it down."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


def hrana_body(row_id: int) -> bytes:
    arg = {"type": "integer", "value": str(row_id)}
    stmt = {"sql": SELECT, "args": [arg]}
    requests = [{"type": "execute", "stmt": stmt}, {"type": "close"}]
    return json.dumps({"baton": None, "requests": requests}).encode()


def query_body(row_id: int) -> bytes:
    return json.dumps({"sql": SELECT, "params": [row_id]}).encode()


def targets(ours: ASGIApp, bare: ASGIApp) -> dict[str, Callable[[int], Awaitable[int]]]:
    return {
        "inline": lambda i: call(bare, "GET", f"/point/{i}"),
        "inline_post": lambda i: call(bare, "POST", "/query", query_body(i)),
        "rest": lambda i: call(ours, "GET", f"/api/v1/tables/items/rows/{i}"),
        "query": lambda i: call(ours, "POST", "/api/v1/query", query_body(i)),
        "hrana2": lambda i: call(ours, "POST", "/v2/pipeline", hrana_body(i)),
        "hrana3": lambda i: call(ours, "POST", "/v3/pipeline", hrana_body(i)),
    }


async def run(db: Path, rows: int, profile: str | None) -> None:
    os.environ["BENCH_DB"] = str(db)
    from edgestore import Settings
    from edgestore.web import create_app
    from http_baseline_app import create_app as create_bare

    ours = create_app(Settings(db_path=db, access_log=False))
    bare = create_bare()
    stop_ours = await lifespan(ours)
    stop_bare = await lifespan(bare)
    try:
        work = targets(ours, bare)
        rnd = random.Random(1)
        for name, request in work.items():
            status = await request(1)
            assert status in (200, 201), (name, status)
        cpu: dict[str, list[float]] = {name: [] for name in work}
        for _ in range(ROUNDS):
            for name, request in work.items():
                ids = [rnd.randint(1, rows) for _ in range(REQUESTS)]
                start = time.process_time()
                for i in ids:
                    await request(i)
                cpu[name].append(1e6 * (time.process_time() - start) / REQUESTS)
        report(cpu, rows)
        if profile is not None:
            await profile_target(work[profile], rows, rnd)
    finally:
        await stop_ours()
        await stop_bare()


def report(cpu: dict[str, list[float]], rows: int) -> None:
    inline = statistics.median(cpu["inline"])
    rest = statistics.median(cpu["rest"])
    print(
        f"in process, {rows:,} rows, random ids; CPU µs/request, median of {ROUNDS} rounds "
        f"of {REQUESTS:,} requests"
    )
    print(f"  {'target':<12} {'µs':>7} {'x inline':>9} {'x REST':>7}  (throughput terms)")
    for name, values in cpu.items():
        us = statistics.median(values)
        print(f"  {name:<12} {us:7.1f} {inline / us:9.2f} {rest / us:7.2f}")


async def profile_target(
    request: Callable[[int], Awaitable[int]], rows: int, rnd: random.Random
) -> None:
    ids = [rnd.randint(1, rows) for _ in range(5 * REQUESTS)]
    profiler = cProfile.Profile()
    profiler.enable()
    for i in ids:
        await request(i)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument(
        "--profile", choices=["inline", "inline_post", "rest", "query", "hrana2", "hrana3"]
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgestore-inprocess-") as tmp:
        db = Path(tmp) / "reads.db"
        make_db(db, args.rows)
        asyncio.run(run(db, args.rows, args.profile))


if __name__ == "__main__":
    main()
