"""Cache RSS growth / cap for value mixes of 100 B..64 KiB written from many tasks.

Runs bench/cache_rss_child.py in a fresh process per measurement: a 25 MiB KVCache written
with 130 MiB from 64 tasks, the memory monitor sampling as in `edgestore serve`. Each mix is
measured with the server's allocator settings (``edgestore.memory.allocator``) and without
them (glibc defaults) in the same run. Target: growth / cap <= 1.25x for every mix.

    .venv/bin/python bench/bench_cache_rss.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

RUNS = 3
CAP = 25 * 2**20
WRITTEN = 130 * 2**20
TASKS = 64
MIXES = ("mixed", "compressible", "random", "small", "large")
CHILD = Path(__file__).resolve().parent / "cache_rss_child.py"


def ratio(mix: str, tuned: bool) -> float:
    env = dict(os.environ)
    if not tuned:
        env["BENCH_UNTUNED"] = "1"
    out = subprocess.run(
        [sys.executable, str(CHILD), str(CAP), str(WRITTEN), str(TASKS), mix],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["ratio"])


def main() -> None:
    print(
        f"cache RSS growth / cap; cap 25 MiB, 130 MiB written by {TASKS} tasks; medians of {RUNS}"
    )
    for mix in MIXES:
        tuned = [ratio(mix, True) for _ in range(RUNS)]
        untuned = [ratio(mix, False) for _ in range(RUNS)]
        print(
            f"  {mix:<13} server allocator settings {statistics.median(tuned):.2f}x "
            f"(runs {[round(v, 2) for v in tuned]}); glibc defaults "
            f"{statistics.median(untuned):.2f}x  (target <= 1.25x)"
        )


if __name__ == "__main__":
    main()
