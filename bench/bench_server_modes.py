"""How `edgestore serve` should run granian: one process (embedded) vs granian's processes.

Designs measured in the same run (all on one seeded database, access logs off):

- ``one-process``: ``edgestore serve`` as shipped (granian embedded in the asyncio loop,
  allocator tuning of ``edgestore.cli.server_runner``);
- ``processes``: the previous design, granian's master + one worker process building the app
  (``python -m granian --factory edgestore.web.app:create_app``);
- ``bare``: a bare Litestar app (bench/http_baseline_app.py) under granian's CLI (master +
  worker), the footprint peer.

1. idle: RSS of all processes of each server after start, then after ``wrk`` load and
   IDLE_SECONDS without connections (targets: one-process <= 60 MB and <= 1.0x bare; back
   within 5% of its start).
2. throughput: cached row reads (GET /api/v1/tables/items/rows/1), wrk -c32, one-process vs
   processes alternating (target >= 0.95x).

Medians of RUNS runs.

    .venv/bin/python bench/bench_server_modes.py [idle] [throughput]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_http import seed
from servers import (
    baseline_cmd,
    edgestore_cmd,
    edgestore_env,
    granian_processes_cmd,
    server,
    tree_cpu,
    tree_rss,
    wrk,
)

RUNS = 5
IDLE_SECONDS = 6
ROW = "/api/v1/tables/items/rows/1"
MiB = 2**20


def designs(db: Path) -> dict[str, tuple[list[str], dict[str, str], str, str]]:
    """name -> (command, environment, health path, load path)."""
    env = edgestore_env(db)
    return {
        "one-process": (edgestore_cmd(db), env, "/health", ROW),
        "processes": (granian_processes_cmd(), env, "/health", ROW),
        "bare": (baseline_cmd(), dict(os.environ, BENCH_DB=str(db)), "/const", "/const"),
    }


def section_idle(work: Path) -> None:
    db = work / "bench.db"
    start: dict[str, list[float]] = {}
    idle: dict[str, list[float]] = {}
    for _ in range(RUNS):
        for name, (cmd, env, health, load) in designs(db).items():
            with server(cmd, env, work, health) as url:
                pid = url.pid
                time.sleep(1)
                start.setdefault(name, []).append(tree_rss(pid) / MiB)
                wrk(url + load, seconds=3, connections=64)
                time.sleep(IDLE_SECONDS)
                idle.setdefault(name, []).append(tree_rss(pid) / MiB)
    print(f"\n[idle] RSS of all processes, MiB (median of {RUNS}); load wrk -c64 3s, then idle")
    for name in start:
        s, i = statistics.median(start[name]), statistics.median(idle[name])
        print(
            f"  {name:<12} start {s:6.1f}  after load + {IDLE_SECONDS}s idle {i:6.1f}  "
            f"({100 * (i - s) / s:+.1f}%)   runs start {[round(v, 1) for v in start[name]]}"
        )
    ours = statistics.median(idle["one-process"])
    bare = statistics.median(idle["bare"])
    print(f"  one-process / bare (idle): {ours / bare:.2f}x (target <= 1.0x; <= 60 MB)")
    print(f"  one-process / processes (idle): {ours / statistics.median(idle['processes']):.2f}x")


def measured(url: str, pid: int) -> tuple[float, float]:
    """(requests/s, server CPU microseconds per request) of one wrk run."""
    before = tree_cpu(pid)
    out = wrk(url)
    assert out["non2xx"] == 0, out
    return out["rps"], 1e6 * (tree_cpu(pid) - before) / max(1.0, out["requests"])


def section_throughput(work: Path) -> None:
    """One-process vs granian's processes, all three servers up at once, runs alternating.

    Two baselines: granian's processes as they run now (its ``auto`` loop takes uvloop, now a
    dependency), and as they ran before uvloop was a dependency (``--loop asyncio``)."""
    db = work / "bench.db"
    d = designs(db)
    one_cmd, one_env, _, _ = d["one-process"]
    mp_cmd, mp_env, _, _ = d["processes"]
    targets = {
        "one-process": (one_cmd, one_env),
        "processes": (mp_cmd, mp_env),
        "processes-asyncio": (granian_processes_cmd("--loop", "asyncio"), mp_env),
    }
    rps: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    with contextlib.ExitStack() as stack:
        urls = {
            name: stack.enter_context(server(c, e, work, "/health"))
            for name, (c, e) in targets.items()
        }
        for url in urls.values():
            wrk(url + ROW, seconds=1)
        for _ in range(RUNS):
            for name, url in urls.items():
                r, c = measured(url + ROW, url.pid)
                rps[name].append(r)
                cpu[name].append(c)
    print(f"\n[throughput] cached row read, wrk -c32, {RUNS} alternating runs")
    for name in targets:
        print(f"  {name:<18} rps {[round(v) for v in rps[name]]}")
        print(f"  {'':<18} CPU us/request {[round(v, 1) for v in cpu[name]]}")
    for base in ("processes", "processes-asyncio"):
        pairs = zip(rps["one-process"], rps[base], strict=True)
        ratio = statistics.median(o / b for o, b in pairs)
        # On a shared machine requests/s swings with other load; the server's CPU time per
        # request does much less, and on a CPU-bound server throughput is its inverse.
        cpu_pairs = zip(cpu["one-process"], cpu[base], strict=True)
        cpu_ratio = statistics.median(b / o for o, b in cpu_pairs)
        print(
            f"  one-process / {base}: requests/s {ratio:.2f}x, CPU-bound throughput (CPU per "
            f"request inverse) {cpu_ratio:.2f}x (target >= 0.95x)"
        )


def main(argv: list[str]) -> None:
    sections = argv or ["idle", "throughput"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "bench.db"
        with server(edgestore_cmd(db), edgestore_env(db), work, "/health"):
            pass
        seed(db)
        print(f"edgestore server modes; {os.cpu_count()} CPUs; medians of {RUNS}")
        if "idle" in sections:
            section_idle(work)
        if "throughput" in sections:
            section_throughput(work)


if __name__ == "__main__":
    main(sys.argv[1:])
