"""One measurement of the cache's real memory (run in a fresh process; prints one JSON line).

Fills a KVCache capped at CAP bytes from many asyncio tasks at once with values of 100 B to
64 KiB (log-uniform sizes), half of them compressible JSON-like text and half random bytes,
until WRITTEN bytes have gone in; then reports RSS growth over the cap. Used by
bench/bench_cache_rss.py and tests/cache/test_cache_rss.py.

    python bench/cache_rss_child.py CAP WRITTEN TASKS [mix]

``mix``: ``mixed`` (default: half compressible), ``compressible``, ``random`` (all 100 B to
64 KiB), ``small`` (100 B to 1 KiB) or ``large`` (16 to 64 KiB), the last two half
compressible.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import random
import sys

from edgestore.cache import CompressedLRU, KVCache
from edgestore.config import Settings
from edgestore.memory import MemoryMonitor, rss_bytes
from edgestore.memory.allocator import tune_allocator
from edgestore.storage.pool import release_memory

WORDS = [b"alpha", b"beta", b"gamma", b"delta", b"user", b"order", b"price", b"2026-01-01"]


SIZES = {"small": (100, 1024), "large": (16 * 1024, 64 * 1024)}


def value(rng: random.Random, i: int, mix: str) -> bytes:
    low, high = SIZES.get(mix, (100, 64 * 1024))
    size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
    compressible = mix == "compressible" or (mix != "random" and rng.random() < 0.5)
    if not compressible:
        return os.urandom(size)
    parts = [b'{"id":%d,"uid":"%032x","text":"' % (i, rng.getrandbits(128))]
    n = len(parts[0])
    while n < size:
        w = rng.choice(WORDS)
        parts.append(w + b" ")
        n += len(w) + 1
    return b"".join(parts)[:size]


async def fill(cap: int, written: int, tasks: int, mix: str) -> dict[str, float]:
    lru = CompressedLRU(cap)
    cache = KVCache(lru)
    # The server's memory monitor runs next to the cache (it trims the C heap when much of
    # it is free); the cap is its own, so pressure levels never shrink it here.
    monitor = MemoryMonitor(Settings(memory_sample_interval=0.5), lru=lru, budget=1 << 40)
    await monitor.start()
    rng = random.Random(11)
    # Warm code paths and the thread pool before the baseline.
    for i in range(200):
        await cache.set(f"warm{i}", value(rng, i, mix))
    await cache.clear()
    gc.collect()
    release_memory()  # the baseline holds no free heap left over from the warm-up
    rss0 = rss_bytes()
    total = 0
    counter = 0

    async def writer() -> None:
        nonlocal total, counter
        while total < written:
            counter += 1
            v = value(rng, counter, mix)
            total += len(v)
            await cache.set(f"k{counter}", v)
            if counter % 7 == 0:
                await cache.get(f"k{counter - 3}")

    await asyncio.gather(*(writer() for _ in range(tasks)))
    gc.collect()
    await asyncio.sleep(1.2)  # the monitor's next samples
    grown = rss_bytes() - rss0
    await monitor.stop()
    stats = cache.lru.stats()
    return {
        "cap": cap,
        "written": total,
        "entries": float(stats.entries),
        "charged": float(cache.lru.currsize),
        "rss_growth": grown,
        "heap_trims": monitor.trims,
        "ratio": grown / cap,
    }


def main() -> None:
    cap, written, tasks = (int(a) for a in sys.argv[1:4])
    mix = sys.argv[4] if len(sys.argv) > 4 else "mixed"
    if os.environ.get("BENCH_UNTUNED") is None:
        tune_allocator()  # as `edgestore serve` does
    print(json.dumps(asyncio.run(fill(cap, written, tasks, mix))))


if __name__ == "__main__":
    main()
