"""Real memory pressure: a subprocess allocates against a small budget and the monitor,
reading its true RSS from /proc, climbs through the levels and comes back down."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CHILD = textwrap.dedent(
    """
    import asyncio, gc, sys
    import msgspec
    sys.path.insert(0, {root!r})
    from edgestore.cache import CompressedLRU
    from edgestore.config import MiB, Settings
    from edgestore.memory import MemoryMonitor, rss_bytes

    async def main():
        base = rss_bytes()
        budget = base + 200 * MiB
        lru = CompressedLRU(8 * MiB)
        for i in range(1000):
            lru.set("k%d" % i, b"v" * 200)
        m = MemoryMonitor(Settings(memory_budget_bytes=budget), lru=lru)
        levels = [(await m.tick()).label]
        blocks = []
        # bytes filled with a non-zero value: every page is touched, so RSS really grows
        for _ in range(22):
            blocks.append(b"\\x01" * (10 * MiB))
            levels.append((await m.tick()).label)
        peak = m.snapshot()
        while blocks:
            del blocks[-1]
            gc.collect()
            levels.append((await m.tick()).label)
        for _ in range(4):
            levels.append((await m.tick()).label)
        final = m.snapshot()
        out = dict(levels=levels, peak=peak, final=final, entries=len(lru))
        print(msgspec.json.encode(out).decode())

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc for RSS")
def test_levels_follow_real_rss() -> None:
    root = str(Path(__file__).resolve().parents[2])
    proc = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    levels: list[str] = out["levels"]
    # climbs in order through every level while allocating (no level skipped back)
    order = ["normal", "warning", "critical", "emergency"]
    firsts = [levels.index(lv) for lv in order]
    assert firsts == sorted(firsts)
    assert out["peak"]["refuse_non_essential"] is True
    assert out["peak"]["cache_max_bytes"] == 4 * 1024 * 1024
    assert out["entries"] == 0  # the emergency emptied the cache
    # and comes back once the memory is freed, with the cap restored step by step
    assert levels[-1] == "normal"
    assert out["final"]["cache_max_bytes"] == 8 * 1024 * 1024
    assert out["final"]["refuse_non_essential"] is False
