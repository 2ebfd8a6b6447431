"""The cache cap bounds the process's real memory (RSS), not only Python's allocations.

Each case runs bench/cache_rss_child.py in a fresh process, configured as `edgestore serve`
runs (allocator settings of ``edgestore.memory.allocator``, the memory monitor sampling):
a 25 MiB cache written from 64 tasks at once with 130 MiB of values of 100 B..64 KiB,
compressible, incompressible or both; RSS growth must stay within 1.25x of the cap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAP = 25 * 1024 * 1024
WRITTEN = 130 * 1024 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("mix", ["mixed", "compressible", "random", "small", "large"])
def test_cache_rss_stays_within_a_quarter_over_its_cap(mix: str) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "cache_rss_child.py"),
            str(CAP),
            str(WRITTEN),
            "64",
            mix,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=240,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["written"] >= WRITTEN
    assert result["charged"] > 0.95 * CAP  # the cache really is full
    assert result["rss_growth"] <= 1.25 * CAP, result
