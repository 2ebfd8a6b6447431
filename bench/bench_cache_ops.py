"""CompressedLRU get/set throughput against a bare ``cachetools.LRUCache(getsizeof=len)``.

Workload per value size: 20,000 keys of realistic JSON values (records with ids, dates,
amounts, free text), a 25 MiB cap, keys drawn from a Zipf-like distribution (s=1.1; caches
serve skewed traffic), 90% gets / 10% sets; plus get-only and set-only runs of the same key
sequence. Every op count is the same for both sides. Prints medians of 5 runs and the ratio
ours/bare (ops/s). Targets: >= 0.5x for 200-byte values, >= 0.3x for 4 KiB values (mixed).
Both sides get the same values and the same key sequence; with 4 KiB values the bare LRU holds
fewer entries (no compression) and its misses are cheap here (nothing is reloaded), so the
share of gets answered is printed for both, from one more untimed pass.

For 4 KiB values two more lines: ``floor`` is the bare LRU plus one zstd decompression per
get (what any cache that keeps these values compressed pays), and ``fits`` repeats the mixed
run with 5,000 keys, whose raw values fit in the cap, so nothing needs compressing.

    .venv/bin/python bench/bench_cache_ops.py
"""

from __future__ import annotations

import bisect
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cachetools

from edgestore.cache import CompressedLRU

# The record generator is shared with the cache tests (run from anywhere: put the repo root
# on the path, as bench_repl.py does).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.cache.helpers import json_row

MiB = 1024 * 1024
CAP = 25 * MiB
KEYS = 20_000
OPS = 200_000
RUNS = 5


def zipf_keys(rng: random.Random, n_keys: int, n: int, s: float = 1.1) -> list[int]:
    weights = [1.0 / (k + 1) ** s for k in range(n_keys)]
    cum = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    perm = list(range(n_keys))
    rng.shuffle(perm)
    return [perm[bisect.bisect_left(cum, rng.random() * total)] for _ in range(n)]


def run(
    get: Callable[[str], object], put: Callable[[str, bytes], None], plan: list[tuple[bool, int]]
) -> float:
    keys, values = KEY_NAMES, VALUES
    t0 = time.perf_counter()
    for is_get, i in plan:
        if is_get:
            get(keys[i])
        else:
            put(keys[i], values[i])
    return time.perf_counter() - t0


def count_hits(
    get: Callable[[str], object], put: Callable[[str, bytes], None], plan: list[tuple[bool, int]]
) -> tuple[int, int]:
    """One more (untimed) pass of ``plan``: (gets answered, gets)."""
    keys, values = KEY_NAMES, VALUES
    hits = gets = 0
    for is_get, i in plan:
        if is_get:
            gets += 1
            hits += get(keys[i]) is not None
        else:
            put(keys[i], values[i])
    return hits, gets


KEY_NAMES: list[str] = []
VALUES: list[bytes] = []


def bench(size: int, keys: int = KEYS, only_mixed: bool = False) -> dict[str, float]:
    rng = random.Random(size)
    KEY_NAMES[:] = [f"obj:{i}" for i in range(keys)]
    VALUES[:] = [json_row(rng, i, size) for i in range(keys)]
    seq = zipf_keys(rng, keys, OPS)
    plans = {
        "mixed 90/10": [(rng.random() < 0.9, i) for i in seq],
        "get only": [(True, i) for i in seq],
        "set only": [(False, i) for i in seq],
    }
    bare: cachetools.LRUCache[str, bytes] = cachetools.LRUCache(CAP, getsizeof=len)
    ours = CompressedLRU(CAP)
    if only_mixed:
        del plans["get only"], plans["set only"]
    for i in range(keys):  # warm: fill, let the dictionary train, fill again
        bare[KEY_NAMES[i]] = VALUES[i]
        ours.set(KEY_NAMES[i], VALUES[i])
    time.sleep(0.5)
    for i in seq[:50_000]:
        bare[KEY_NAMES[i]] = VALUES[i]
        ours.set(KEY_NAMES[i], VALUES[i])

    def bare_put(k: str, v: bytes) -> None:
        bare[k] = v

    ratios = {}
    for name, plan in plans.items():
        tb, to = [], []
        for _ in range(RUNS):
            tb.append(run(bare.get, bare_put, plan))
            to.append(run(ours.get, ours.set, plan))
        mb, mo = statistics.median(tb), statistics.median(to)
        ratio = mb / mo
        ratios[name] = ratio
        if only_mixed:
            name = f"fits {keys}"
        hit_note = ""
        if name != "set only":
            # The bare LRU holds fewer entries: its misses are cheap here (no reload follows).
            bh, n_gets = count_hits(bare.get, bare_put, plan)
            oh, _ = count_hits(ours.get, ours.set, plan)
            hit_note = f"   hits bare {bh / n_gets:.1%} ours {oh / n_gets:.1%}"
        print(
            f"{size:>5} B  {name:<12} bare {len(plan) / mb:>11,.0f} ops/s   "
            f"ours {len(plan) / mo:>11,.0f} ops/s   ratio {ratio:.2f}x{hit_note}"
        )
    if size >= ours.threshold and not only_mixed:
        import zstandard

        frames = {k: zstandard.ZstdCompressor(level=1).compress(v) for k, v in bare.items()}
        dec = zstandard.ZstdDecompressor()

        def floor_get(k: str) -> object:
            v = frames.get(k)
            return dec.decompress(v) if v is not None else None

        plan = plans["mixed 90/10"]
        tb = statistics.median(run(bare.get, bare_put, plan) for _ in range(RUNS))
        tf = statistics.median(run(floor_get, bare_put, plan) for _ in range(RUNS))
        print(
            f"{size:>5} B  {'floor':<12} bare {len(plan) / tb:>11,.0f} ops/s   "
            f"+zstd {len(plan) / tf:>10,.0f} ops/s   ratio {tb / tf:.2f}x"
        )
    st = ours.stats()
    print(
        f"        ours: {st.entries} entries, {st.bytes / MiB:.1f} MiB charged, "
        f"value/stored ratio {st.ratio}, raw {st.hot_entries} "
        f"({st.frequent_entries} frequent), "
        f"hit rate {st.hit_rate}, dictionary {st.compression.dictionary_id}; "
        f"bare holds {len(bare)} entries"
    )
    return ratios


def main() -> int:
    print(f"cap {CAP // MiB} MiB, {KEYS} keys, {OPS} ops per run, median of {RUNS} runs")
    small = bench(200)
    big = bench(4096)
    bench(4096, keys=5000, only_mixed=True)
    ok = small["mixed 90/10"] >= 0.5 and big["mixed 90/10"] >= 0.3
    print(
        f"targets (mixed): 200 B {small['mixed 90/10']:.2f}x >= 0.5x, "
        f"4 KiB {big['mixed 90/10']:.2f}x >= 0.3x: {'MET' if ok else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
