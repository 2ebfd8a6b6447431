"""The byte cap bounds real memory: fill a 25 MiB cache with ~120 MiB of mixed values.

Measured in a fresh subprocess (so nothing else in the test session moves the figures):
once with tracemalloc (every Python allocation the cache keeps: entries, keys, bookkeeping,
dictionaries, samples) and once by RSS growth (everything, including zstd's C contexts and
allocator fragmentation). The stated overheads are what the assertions allow beyond the cap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

MiB = 1024 * 1024
CAP = 25 * MiB
# Python-visible memory beyond the cap: trained dictionaries (<= 3 x 16 KiB), pending
# dictionary samples (<= 1 MiB) and tracemalloc's own rounding.
TRACED_OVERHEAD = 1 * MiB
# RSS beyond the cap: the above plus zstd compression/decompression contexts, the
# interpreter's allocator keeping freed arenas, and page granularity.
RSS_OVERHEAD = 8 * MiB

CHILD = textwrap.dedent(
    """
    import gc, json, os, random, sys, tracemalloc
    import msgspec
    sys.path.insert(0, {root!r})
    from edgestore.cache import CompressedLRU
    from edgestore.memory import rss_bytes
    from tests.cache.helpers import json_row

    mode = sys.argv[1]
    cap = {cap}
    rng = random.Random(7)
    cache = CompressedLRU(cap)
    # warm the interpreter's code paths before measuring
    probe = CompressedLRU(1 << 20)
    for i in range(2000):
        probe.set("w%d" % i, json_row(rng, i, 1400))
    del probe
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet"]
    text = b" ".join(rng.choice(words) for _ in range(8000))
    # distinct rows, made fast: a pool of generated rows, each use with its own id and uuid
    pools = {{n: [json_row(rng, j, n)[1:] for j in range(300)] for n in (200, 1400, 4096)}}

    def row(n):
        head = b'{{"rid":%d,"ruid":"%032x",' % (i, rng.getrandbits(128))
        return head + rng.choice(pools[n])

    gc.collect()
    if mode == "traced":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    rss0 = rss_bytes()
    total = 0
    i = 0
    while total < 120 * 1024 * 1024:
        r = rng.random()
        if r < 0.40:
            v = row(200)
        elif r < 0.70:
            v = row(1400)
        elif r < 0.85:
            v = row(4096)
        elif r < 0.95:
            v = os.urandom(2048)
        else:
            v = text[: rng.randint(20_000, 40_000)]
        key = ("kv:%d" % i) if i % 3 else ("q:select * from t where id = ?|%d" % i).encode()
        cache.set(key, v, ttl=3600 if i % 5 == 0 else None)
        total += len(v)
        i += 1
    del v
    gc.collect()
    out = dict(
        stats=msgspec.to_builtins(cache.stats()),
        written=total,
        count=i,
        rss_growth=rss_bytes() - rss0,
    )
    if mode == "traced":
        out["traced_growth"] = tracemalloc.get_traced_memory()[0] - before
    print(json.dumps(out))
    """
)


def run_child(mode: str) -> dict[str, object]:
    root = str(Path(__file__).resolve().parents[2])
    code = CHILD.format(root=root, cap=CAP)
    proc = subprocess.run(
        [sys.executable, "-c", code, mode],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_cap_bounds_python_memory_tracemalloc() -> None:
    out = run_child("traced")
    stats = out["stats"]
    assert isinstance(stats, dict)
    assert stats["bytes"] <= CAP
    assert stats["evictions"] > 0  # we really went far past the cap
    assert out["written"] >= 4 * CAP  # type: ignore[operator]
    traced = out["traced_growth"]
    assert isinstance(traced, int)
    print(f"tracemalloc growth {traced / MiB:.1f} MiB for a {CAP // MiB} MiB cap; {stats}")
    assert traced <= CAP + TRACED_OVERHEAD


def test_cap_bounds_rss() -> None:
    out = run_child("rss")
    growth = out["rss_growth"]
    assert isinstance(growth, int)
    print(f"RSS growth {growth / MiB:.1f} MiB for a {CAP // MiB} MiB cap")
    assert growth <= CAP + RSS_OVERHEAD
