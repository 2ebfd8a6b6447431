"""Bytes of memory per cached entry: 100,000 JSON rows of ~1.4 KB, compressed vs raw.

Each row is distinct: a unique id and uuid in front of one of 5,000 generated records
(customer, email, timestamps, amounts, line items, free text). Memory is what tracemalloc
sees the cache keep (values, keys, bookkeeping, dictionaries); rows are made inside the
measured window and not kept by the benchmark. Three caches:

- ``raw dict``: a plain ``dict`` of the rows (the least any Python cache can spend);
- ``raw LRU``: our CompressedLRU with compression off (threshold above the row size);
- ``compressed``: our CompressedLRU with the defaults (zstd level 1, trained dictionary),
  capped at 25 MiB, which the 100k rows (140 MB) overflow many times.

Target: the 25 MiB cap holds >= 2x its size in raw row bytes.

    .venv/bin/python bench/bench_cache_density.py
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc

from bench_cache_ops import record
from edgestore.cache import CompressedLRU

MiB = 1024 * 1024
CAP = 25 * MiB
ROWS = 100_000


def fill(target: object, n: int, pool: list[bytes]) -> tuple[int, float]:
    """Put ``n`` fresh rows in ``target``; (bytes traced after, seconds)."""
    rng = random.Random(42)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    for i in range(n):
        row = b'{"rid":%d,"ruid":"%032x",' % (i, rng.getrandbits(128)) + rng.choice(pool)
        if isinstance(target, dict):
            target[f"row:{i}"] = row
        else:
            assert isinstance(target, CompressedLRU)
            target.set(f"row:{i}", row)
    elapsed = time.perf_counter() - t0
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return used, elapsed


def main() -> int:
    rng = random.Random(1)
    pool = [record(rng, i, 1340)[1:] for i in range(5000)]
    plain: dict[str, bytes] = {}
    used, _ = fill(plain, ROWS, pool)
    raw_bytes = sum(len(v) for v in plain.values())
    avg = raw_bytes / ROWS
    print(f"{ROWS} rows, {avg:.0f} B of JSON on average, {raw_bytes / MiB:.1f} MiB in all")
    print(f"raw dict    : {used / ROWS:7.0f} B/entry")
    del plain

    raw_lru = CompressedLRU(1 << 40, compress_threshold=1 << 30, dictionary=False)
    used, _ = fill(raw_lru, ROWS, pool)
    print(
        f"raw LRU     : {used / ROWS:7.0f} B/entry traced, {raw_lru.currsize / ROWS:7.0f} charged"
    )
    raw_per_entry = raw_lru.currsize / ROWS
    del raw_lru

    lru = CompressedLRU(CAP)
    used, secs = fill(lru, ROWS, pool)
    st = lru.stats()
    n = st.entries
    held = st.value_bytes
    print(
        f"compressed  : {used / n:7.0f} B/entry traced, {st.bytes / n:7.0f} charged "
        f"({n} of {ROWS} rows held in {CAP // MiB} MiB, {st.compressed_entries} compressed, "
        f"{st.hot_entries} hot raw; zstd ratio {st.compression.ratio}, "
        f"dictionary {st.compression.dictionary_bytes} B, "
        f"{ROWS / secs:,.0f} sets/s incl. row generation)"
    )
    print(f"bytes/entry raw vs compressed: {raw_per_entry / (st.bytes / n):.2f}x fewer")
    print(f"traced memory of the capped cache: {used / MiB:.1f} MiB for a {CAP // MiB} MiB cap")
    ratio = held / CAP
    print(
        f"the {CAP // MiB} MiB cap holds {held / MiB:.1f} MiB of raw rows = {ratio:.2f}x "
        f"its size (target >= 2x): {'MET' if ratio >= 2 else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
