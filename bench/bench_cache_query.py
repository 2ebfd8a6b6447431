"""Cached query hits through the Store against (a) the same query without the cache and
(b) a plain ``dict`` lookup of the same pre-serialised bytes (the floor for any cache).

Database: 2,000 users, 50,000 orders in a WAL file. Three statements, each asked with the
same parameters over and over (a hit after the first call):

- ``pk``: one row by primary key (SQLite is at its fastest here: the cache has least to win);
- ``page``: 20 orders of one user, newest first (a typical API page);
- ``report``: revenue per city over a join with GROUP BY (what caches are for).

Prints per-call medians of 7 runs, the ratios, and for each statement whether a hit is
>= 5x faster than the same query uncached (the target this bench checks). A hit of a recently used
result is served from the decoded tier (no MessagePack decode; the ``dict+decode`` column is
what a cache of serialised results would pay at least); what remains is the Store.query call,
the external-write check, the version stamp and building the Result. ``pk`` cannot reach 5x:
SQLite answers a primary-key lookup in ~5 us, so a hit would need to cost ~1 us.

    .venv/bin/python bench/bench_cache_query.py
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

import edgestore
from edgestore.cache.store_cache import StoreCache

N = 2000
RUNS = 7

QUERIES = {
    "pk": ("SELECT id, user_id, total, status, created FROM orders WHERE id = ?", [4242]),
    "page": (
        "SELECT id, total, status, created FROM orders WHERE user_id = ? "
        "ORDER BY created DESC LIMIT 20",
        [77],
    ),
    "report": (
        "SELECT u.city, count(*) AS n, round(sum(o.total), 2) AS revenue "
        "FROM orders o JOIN users u ON u.id = o.user_id "
        "WHERE o.status = ? GROUP BY u.city ORDER BY revenue DESC",
        ["paid"],
    ),
}


async def per_call(fn: Callable[[], Awaitable[object]], n: int = N) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - t0) / n


def per_call_sync(fn: Callable[[], object], n: int = N * 10) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = await edgestore.open(Path(tmp) / "bench.db", schemas_dir=None)
        rng = random.Random(1)
        await store.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, city TEXT)")
        await store.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INT, total REAL, "
            "status TEXT, created TEXT)"
        )
        await store.execute("CREATE INDEX orders_user ON orders(user_id, created)")
        cities = ["oslo", "rome", "lima", "kyiv", "pune", "cork", "nice", "bern"]
        await store.batch(
            [
                ("INSERT INTO users VALUES (?, ?, ?)", [i, f"user {i}", rng.choice(cities)])
                for i in range(1, 2001)
            ]
        )
        await store.batch(
            [
                (
                    "INSERT INTO orders(user_id, total, status, created) VALUES (?, ?, ?, ?)",
                    [
                        rng.randint(1, 2000),
                        round(rng.random() * 300, 2),
                        rng.choice(["paid", "open", "refunded"]),
                        f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    ],
                )
                for _ in range(50_000)
            ]
        )
        print(
            f"per-call medians of {RUNS} runs (µs); uncached: uncached / hit; "
            "dict, dict+decode: hit / that"
        )
        met: list[str] = []
        missed: list[str] = []
        for name, (sql, params) in QUERIES.items():
            first = await store.query(sql, params, cache=True)
            blob = msgspec.msgpack.encode(
                ([(c.name, c.decltype) for c in first.columns], first.values, False)
            )
            plain: dict[object, bytes] = {("k", name): blob}
            decoder = msgspec.msgpack.Decoder()
            key = ("k", name)

            def hit_call(sql: str = sql, params: list[object] = params) -> Awaitable[object]:
                return store.query(sql, params, cache=True)

            def miss_call(sql: str = sql, params: list[object] = params) -> Awaitable[object]:
                return store.query(sql, params, cache=False)

            def dict_call(plain: dict[object, bytes] = plain, key: object = key) -> object:
                return plain[key]

            def dict_decode_call(
                plain: dict[object, bytes] = plain, key: object = key, dec: Any = decoder
            ) -> object:
                return dec.decode(plain[key])

            hit_t, miss_t, dict_t, dict_dec_t = [], [], [], []
            for _ in range(RUNS):
                hit_t.append(await per_call(hit_call))
                miss_t.append(await per_call(miss_call, n=N // 4))
                dict_t.append(per_call_sync(dict_call))
                dict_dec_t.append(per_call_sync(dict_decode_call))
            hit, miss = statistics.median(hit_t), statistics.median(miss_t)
            d, dd = statistics.median(dict_t), statistics.median(dict_dec_t)
            assert (await store.query(sql, params, cache=True)).cached
            ratio = miss / hit
            (met if ratio >= 5 else missed).append(f"{name} {ratio:.1f}x")
            print(
                f"{name:<7} rows {len(first.values):>3}  hit {hit * 1e6:7.1f}  "
                f"uncached {miss * 1e6:8.1f} ({ratio:5.1f}x)  "
                f"dict {d * 1e6:5.2f} ({hit / d:6.0f}x slower)  "
                f"dict+decode {dd * 1e6:5.2f} ({hit / dd:5.1f}x)  "
                f"{'>= 5x' if ratio >= 5 else '< 5x'}"
            )
        print(f"query cache: {StoreCache.of(store).stats().query}")
        await store.close()
        print(
            f"hit >= 5x uncached: met by {', '.join(met) or 'none'}; "
            f"not met by {', '.join(missed) or 'none'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
