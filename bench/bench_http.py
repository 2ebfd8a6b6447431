"""HTTP benchmarks for `edgestore serve`; each figure is a ratio against a baseline of the same run.

Load generator: ``wrk`` (Debian package) on loopback. Servers: ``edgestore serve`` and a bare
Litestar app (bench/http_baseline_app.py), both under granian with one worker, access logs off.

1. cached: GET /api/v1/tables/items/rows/1 (query-cache hit) vs a constant-dict route
   (target >= 0.85x rps; p99 <= 1.3x the constant route's p99).
2. uncached: the same row read with the query cache off vs a route doing the same point
   select with inline stdlib sqlite3 (target >= 0.7x rps).
3. mixed: 1,000 concurrent keep-alive clients for 30 s, 90% row reads / 10% inserts, with the
   25 MiB cache filled first: errors, p99, peak RSS, RSS drift over the run. Baseline: the
   bare Litestar app under the same 1,000 clients (point reads and JSON-body selects); what
   its RSS grows by is what the connections cost the server stack before edgestore does
   anything, so edgestore's start + its cache + that growth is the floor it is printed against.
4. idle: RSS of edgestore serve (all processes) after the idle disconnect next to the bare
   Litestar app (master + worker).

Medians of RUNS runs (and of per-run ratios; ours and baseline alternate). Run all, or name
sections:

    .venv/bin/python bench/bench_http.py [cached] [uncached] [mixed] [idle]
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import httpx

import servers
from servers import baseline_cmd, edgestore_cmd, edgestore_env, server, tree_rss

RUNS = 5
DURATION = 3  # seconds per wrk run in the rps sections (ours and baseline alternate)
CONNECTIONS = 32
ROWS = 10_000
MIXED_CLIENTS = 1_000
MIXED_SECONDS = 30
AFTER_SECONDS = 6
# wrk with this module's defaults (the rps sections alternate short runs of ours and baseline).
wrk = partial(servers.wrk, connections=CONNECTIONS, seconds=DURATION)


def seed(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    with conn:
        conn.execute("DELETE FROM items")
        conn.executemany(
            "INSERT INTO items(id, name, price, created_at) VALUES (?, ?, ?, ?)",
            ((i, f"item-{i}", i * 10, "2026-01-01T00:00:00.000Z") for i in range(1, ROWS + 1)),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def fmt_ratio(name: str, ours: float, base: float, target: str) -> str:
    return (
        f"{name:<44} baseline {base:>10.1f}  ours {ours:>10.1f}  "
        f"ratio {ours / base:5.2f}x  ({target})"
    )


def section_rps(work: Path, cached: bool) -> None:
    db = work / "bench.db"
    our_path = "/api/v1/tables/items/rows/1"
    base_path = "/const" if cached else "/point/1"
    env = edgestore_env(db) if cached else edgestore_env(db, EDGESTORE_QUERY_CACHE="false")
    base_env = dict(os.environ, BENCH_DB=str(db))
    ours_rps: list[float] = []
    base_rps: list[float] = []
    ours_p99: list[float] = []
    base_p99: list[float] = []
    with (
        server(edgestore_cmd(db), env, work, "/health") as ours,
        server(baseline_cmd(), base_env, work, "/const") as base,
    ):
        for url in (ours + our_path, base + base_path):  # warm up both
            wrk(url, seconds=1)
        for _ in range(RUNS):
            a = wrk(ours + our_path)
            b = wrk(base + base_path)
            assert a["non2xx"] == 0, a
            assert b["non2xx"] == 0, b
            ours_rps.append(a["rps"])
            base_rps.append(b["rps"])
            ours_p99.append(a["p99"] * 1000)
            base_p99.append(b["p99"] * 1000)
    label = "cached row read" if cached else "uncached point read"
    peer = "constant-dict route" if cached else "inline sqlite3 route"
    print(
        f"\n[{label}] vs bare Litestar {peer}; granian 1 worker; wrk -c{CONNECTIONS} "
        f"{DURATION}s x {RUNS}"
    )
    print(f"  runs rps ours {[round(v) for v in ours_rps]} baseline {[round(v) for v in base_rps]}")
    print(
        f"  runs p99 ms ours {[round(v, 1) for v in ours_p99]} "
        f"baseline {[round(v, 1) for v in base_p99]}"
    )
    # Runs alternate ours/baseline, so neighbouring runs share the machine's load of the moment.
    rps_pairs = statistics.median(o / b for o, b in zip(ours_rps, base_rps, strict=True))
    p99_pairs = statistics.median(o / b for o, b in zip(ours_p99, base_p99, strict=True))
    print(
        f"  median of per-run ratios: requests/s {rps_pairs:.2f}x"
        + (f", p99 {p99_pairs:.2f}x" if cached else "")
    )
    print(
        "  "
        + fmt_ratio(
            "requests/s (median)",
            statistics.median(ours_rps),
            statistics.median(base_rps),
            ">= 0.85x" if cached else ">= 0.7x",
        )
    )
    if cached:
        print(
            "  "
            + fmt_ratio(
                "p99 latency ms (median; lower is better)",
                statistics.median(ours_p99),
                statistics.median(base_p99),
                "<= 1.3x",
            )
        )


# 90% random point reads, 10% of another request: inserts for edgestore; for the bare Litestar
# baseline under the same connections its JSON-body select (it has no insert route).
MIXED_LUA = """
local n = {rows}
request = function()
  if math.random() < 0.9 then
    return wrk.format("GET", "{read_path}" .. math.random(1, n))
  end
  return {other}
end
"""
EDGESTORE_MIXED = {
    "read_path": "/api/v1/tables/items/rows/",
    "other": """wrk.format("POST", "/api/v1/tables/items/rows",
    {["Content-Type"] = "application/json"}, '{"name": "bench", "price": 1}')""",
}
BASELINE_MIXED = {
    "read_path": "/point/",
    "other": """wrk.format("POST", "/query", {["Content-Type"] = "application/json"},
    '{"sql": "SELECT * FROM items WHERE id = ?", "params": [' .. math.random(1, n) .. ']}')""",
}


def fill_cache(url: str) -> float:
    """PUT incompressible values until the cache reports ~its 25 MiB budget; returns bytes."""
    value = base64.b64encode(os.urandom(12_000)).decode()
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(4_000):
            http.put(f"/api/v1/cache/fill-{i}", json=value + str(i))
        text = http.get("/metrics").text
    m = re.search(r"^edgestore_cache_bytes ([\d.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def section_mixed(work: Path) -> None:
    db = work / "bench.db"
    script = work / "mixed.lua"
    script.write_text(MIXED_LUA.format(rows=ROWS, **EDGESTORE_MIXED))
    if (soft := _raise_nofile()) < MIXED_CLIENTS + 100:
        print(f"\n[mixed] skipped: open-file limit {soft} < {MIXED_CLIENTS + 100}")
        return
    with server(edgestore_cmd(db), edgestore_env(db), work, "/health") as url:
        start = tree_rss(url.pid)
        cache_bytes = fill_cache(url)
        out, samples = _mixed_load(url, script)
        time.sleep(AFTER_SECONDS)  # the clients are gone: what comes back
        after = tree_rss(url.pid)
    base_script = work / "baseline-mixed.lua"
    base_script.write_text(MIXED_LUA.format(rows=ROWS, **BASELINE_MIXED))
    with server(baseline_cmd(), dict(os.environ, BENCH_DB=str(db)), work, "/const") as url:
        base_start = tree_rss(url.pid)
        base_out, base_samples = _mixed_load(url, base_script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    third = max(1, len(samples) // 3)
    early = statistics.mean(samples[third : 2 * third]) if len(samples) >= 3 else samples[0]
    late = statistics.mean(samples[-third:])
    print(
        f"\n[mixed] {MIXED_CLIENTS} keep-alive clients, {MIXED_SECONDS}s, 90% reads / 10% "
        f"inserts, cache filled to {cache_bytes / 2**20:.1f} MiB first"
    )
    print(f"  requests/s {rps:.0f}; p99 {p99.group(1)}{p99.group(2) if p99 else ''}")  # type: ignore[union-attr]
    print(
        f"  errors: non-2xx {non2xx.group(1) if non2xx else 0}; socket "
        f"{sock.groups() if sock else (0, 0, 0, 0)}"
    )
    print(
        f"  RSS (every process of the server): peak {max(samples) / 2**20:.1f} MiB; middle "
        f"third {early / 2**20:.1f} MiB, last third {late / 2**20:.1f} MiB "
        f"(drift {100 * (late - early) / early:+.1f}%; target <= 100 MB, flat)"
    )
    print(
        f"  RSS {AFTER_SECONDS} s after the clients closed their connections: "
        f"{after / 2**20:.1f} MiB"
    )
    growth = max(base_samples) - base_start
    base_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", base_out).group(1))  # type: ignore[union-attr]
    print(
        f"  bare Litestar on granian (master + worker), same clients, {base_rps:.0f} req/s: "
        f"RSS {base_start / 2**20:.1f} MiB at start, peak {max(base_samples) / 2**20:.1f} MiB "
        f"(+{growth / 2**20:.1f} MiB for the connections alone)"
    )
    floor = start + cache_bytes + growth
    print(
        f"  edgestore's floor: its start {start / 2**20:.1f} + the cache's charge "
        f"{cache_bytes / 2**20:.1f} + the bare stack's growth {growth / 2**20:.1f} = "
        f"{floor / 2**20:.1f} MiB; measured peak / floor {max(samples) / floor:.2f}x"
    )


def _mixed_load(url: servers.ServerURL, script: Path) -> tuple[str, list[int]]:
    """Run the 1,000-client load against ``url``; (wrk's output, RSS samples every 0.5 s)."""
    samples: list[int] = []
    proc = subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{MIXED_CLIENTS}",
            f"-d{MIXED_SECONDS}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None:
        samples.append(tree_rss(url.pid))
        time.sleep(0.5)
    return (proc.stdout.read() if proc.stdout else ""), samples


def _raise_nofile() -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def section_idle(work: Path) -> None:
    db = work / "bench.db"
    env = edgestore_env(db, EDGESTORE_IDLE_TIMEOUT="1", EDGESTORE_MEMORY_SAMPLE_INTERVAL="1")
    ours_rss: list[int] = []
    base_rss: list[int] = []
    for _ in range(RUNS):
        with server(edgestore_cmd(db), env, work, "/health") as url:
            pid = url.pid
            wrk(url + "/api/v1/tables/items/rows/1", seconds=2)
            time.sleep(3)  # past idle_timeout: connections and page caches closed
            ready = httpx.get(url + "/health/ready").json()
            ours_rss.append(tree_rss(pid))
        with server(baseline_cmd(), dict(os.environ, BENCH_DB=str(db)), work, "/const") as url:
            pid = url.pid
            wrk(url + "/const", seconds=2)
            time.sleep(3)
            base_rss.append(tree_rss(pid))
    print("\n[idle] RSS of all processes after load then idle (edgestore: idle_timeout=1s)")
    print(
        f"  pool after idle: connections_open={ready['pool'].get('connections_open')} "
        "(reported by /health/ready, which itself just reconnected)"
    )
    print(
        "  "
        + fmt_ratio(
            "idle RSS MiB (median; lower is better)",
            statistics.median(ours_rss) / 2**20,
            statistics.median(base_rss) / 2**20,
            "<= 1.0x and <= 60 MB",
        )
    )


def main(argv: list[str]) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    sections = argv or ["cached", "uncached", "mixed", "idle"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "bench.db"
        # Let edgestore create the file (WAL, schema), then seed it directly.
        with server(edgestore_cmd(db), edgestore_env(db), work, "/health"):
            pass
        seed(db)
        print(f"edgestore HTTP benchmarks: {ROWS} rows; {os.cpu_count()} CPUs; medians of {RUNS}")
        if "cached" in sections:
            section_rps(work, cached=True)
        if "uncached" in sections:
            section_rps(work, cached=False)
        if "mixed" in sections:
            section_mixed(work)
        if "idle" in sections:
            section_idle(work)


if __name__ == "__main__":
    main(sys.argv[1:])
