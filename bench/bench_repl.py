"""Replication benchmarks, one run, real processes on loopback; medians.

1. Pull throughput: a real ``libsql`` embedded replica pulls N frames from an ``edgestore
   serve`` primary (``/sync``, 128 frames a request, checksums validated on the primary) vs.
   the baseline of copying the same WAL bytes locally (``shutil.copyfile``): frames/s, MB/s.
2. Replication lag: a steady write load on the primary (one insert every ~10 ms), a replica
   pulling every 100 ms (libsql ``sync()`` on a timer). Lag = time from the primary's
   acknowledgement to the row being readable on the replica; p50 / p99, against the baseline
   of the pull interval itself (the expected lag of pure polling is half of it).
3. Point read: ``SELECT ... WHERE id = ?`` on the replica node's store (``open_replica``:
   local libsql replica file) vs. the same read on a primary's store over the same data
   (both in-process, the layer the HTTP routes call); medians of 5 runs of 5,000 reads.
   And the same read over HTTP (Hrana v2 pipeline, keep-alive client): an ``edgestore serve
   --replica-of`` node vs. its primary node; medians of 5 runs of 1,000 reads.

    .venv/bin/python bench/bench_repl.py
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import libsql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.replication.conftest import Node

from edgestore.config import Settings
from edgestore.replication.replica_store import open_replica
from edgestore.storage import open as open_store

RUNS = 5
FRAME = 24 + 4096


def _load(primary: Node, first: int, count: int, per_txn: int) -> None:
    for start in range(first, first + count, per_txn):
        primary.transaction(
            [
                ("INSERT INTO t (id, v) VALUES (?, ?)", [i, f"row-{i}-" + "z" * 300])
                for i in range(start, min(start + per_txn, first + count))
            ]
        )


def bench_pull(tmp: Path) -> None:
    rates: list[float] = []
    http_rates: list[float] = []
    base_rates: list[float] = []
    frames_pulled = 0
    for run in range(RUNS):
        d = tmp / f"pull{run}"
        d.mkdir()
        primary = Node(d / "p.db", replication_wal_threshold_bytes=1 << 30).start()
        try:
            primary.write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            conn = libsql.connect(str(d / "r.db"), sync_url=primary.url)
            conn.sync()
            start_frames = primary.status()["frames"]
            _load(primary, 1, 60_000, 200)
            frames = primary.status()["frames"] - start_frames
            # The server alone first: the frames over HTTP, nothing applied.
            generation = primary.status()["generation"]
            t0 = time.perf_counter()
            got, nxt = 0, 1
            with httpx.Client(timeout=30) as client:
                while True:
                    resp = client.get(f"{primary.url}/sync/{generation}/{nxt}/{nxt + 128}")
                    if resp.status_code != 200:
                        break
                    n = len(resp.content) // FRAME
                    got += n
                    nxt += n
            http_rates.append(got / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            conn.sync()
            dt = time.perf_counter() - t0
            rates.append(frames / dt)
            frames_pulled = frames
            conn.close()

            wal = Path(str(d / "p.db") + "-wal")
            t0 = time.perf_counter()
            shutil.copyfile(wal, d / "copy-wal")
            base_rates.append((wal.stat().st_size // FRAME) / (time.perf_counter() - t0))
        finally:
            primary.stop()
    ours, base = statistics.median(rates), statistics.median(base_rates)
    print(f"pull throughput ({frames_pulled} frames, median of {RUNS}):")
    print(f"  baseline local WAL copy : {base:12.0f} frames/s  {base * FRAME / 1e6:8.1f} MB/s")
    print(f"  libsql pull from primary: {ours:12.0f} frames/s  {ours * FRAME / 1e6:8.1f} MB/s")
    print(f"  ratio ours/baseline     : {ours / base:.4f}")
    served = statistics.median(http_rates)
    print(
        f"  server only (HTTP /sync, no apply; checksummed after commits): "
        f"{served:8.0f} frames/s {served * FRAME / 1e6:6.1f} MB/s  ratio {served / base:.4f}"
    )


def bench_lag(tmp: Path) -> None:
    d = tmp / "lag"
    d.mkdir()
    primary = Node(d / "p.db").start()
    interval = 0.1
    try:
        primary.write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn = libsql.connect(str(d / "r.db"), sync_url=primary.url)
        conn.sync()
        acked: dict[int, float] = {}
        seen: dict[int, float] = {}
        stop = threading.Event()

        def writer() -> None:
            with httpx.Client(timeout=10) as client:
                i = 0
                while not stop.is_set():
                    i += 1
                    body = {
                        "baton": None,
                        "requests": [
                            {
                                "type": "execute",
                                "stmt": {
                                    "sql": "INSERT INTO t (id, v) VALUES (?, 'x')",
                                    "args": [{"type": "integer", "value": str(i)}],
                                },
                            },
                            {"type": "close"},
                        ],
                    }
                    client.post(primary.url + "/v2/pipeline", json=body).raise_for_status()
                    acked[i] = time.perf_counter()
                    time.sleep(0.01)

        def puller() -> None:
            last = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                conn.sync()
                top = conn.execute("SELECT max(id) FROM t").fetchall()[0][0] or 0
                now = time.perf_counter()
                for i in range(last + 1, top + 1):
                    seen[i] = now
                last = max(last, top)
                time.sleep(max(0.0, interval - (time.perf_counter() - t0)))

        threads = [threading.Thread(target=writer), threading.Thread(target=puller)]
        for t in threads:
            t.start()
        time.sleep(15)
        stop.set()
        for t in threads:
            t.join(30)
        conn.close()
        lags = sorted(seen[i] - acked[i] for i in seen if i in acked and seen[i] >= acked[i])
        p50 = lags[len(lags) // 2] * 1000
        p99 = lags[int(len(lags) * 0.99)] * 1000
        print(f"replication lag, pull every {interval * 1000:.0f} ms, {len(lags)} writes:")
        print(f"  baseline (pull interval)  : {interval * 1000:8.1f} ms")
        print(f"  p50 ours                  : {p50:8.1f} ms   ratio p50/interval {p50 / 100:.2f}")
        print(f"  p99 ours                  : {p99:8.1f} ms   ratio p99/interval {p99 / 100:.2f}")
    finally:
        primary.stop()


async def bench_point_read(tmp: Path) -> None:
    d = tmp / "read"
    d.mkdir()
    primary = Node(d / "p.db").start()
    try:
        primary.write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        _load(primary, 1, 10_000, 500)
        replica = await open_replica(
            Settings(
                db_path=d / "replica" / "r.db",
                replica_of=primary.url,
                schemas_dir=None,
                query_cache=False,
                sync_interval=3600.0,
            )
        )
        primary.stop()  # the primary's own store below opens the same (now closed) file
        local = await open_store(
            settings=Settings(db_path=d / "p.db", schemas_dir=None, query_cache=False)
        )
        sql = "SELECT id, v FROM t WHERE id = ?"
        n = 5000

        async def run(store: object) -> float:
            query = store.query  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            for i in range(n):
                await query(sql, [1 + (i * 7919) % 10_000], cache=False)
            return (time.perf_counter() - t0) / n * 1e6

        from edgestore.replication.read_options import set_read_options

        set_read_options(True, None)  # the lag gate is not what this measures
        ours = statistics.median([await run(replica) for _ in range(RUNS)])
        base = statistics.median([await run(local) for _ in range(RUNS)])
        await replica.close()
        await local.close()
        print(f"point read, store level, median of {RUNS} x {n}:")
        print(f"  baseline primary store: {base:8.1f} us/read")
        print(f"  replica store         : {ours:8.1f} us/read   ratio {ours / base:.2f}")
    finally:
        primary.stop()


def bench_point_read_http(tmp: Path) -> None:
    d = tmp / "http"
    (d / "replica").mkdir(parents=True)
    primary = Node(d / "p.db").start()
    replica = Node(d / "replica" / "r.db")
    try:
        primary.write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        _load(primary, 1, 10_000, 500)
        replica.start("--replica-of", primary.url, "--sync-interval", "1")
        n = 1000

        def run(node: Node) -> float:
            with httpx.Client(timeout=10) as client:
                t0 = time.perf_counter()
                for i in range(n):
                    body = {
                        "baton": None,
                        "requests": [
                            {
                                "type": "execute",
                                "stmt": {
                                    "sql": "SELECT id, v FROM t WHERE id = ?",
                                    "args": [{"type": "integer", "value": str(1 + i * 7 % 9999)}],
                                },
                            },
                            {"type": "close"},
                        ],
                    }
                    client.post(node.url + "/v2/pipeline", json=body).raise_for_status()
                return (time.perf_counter() - t0) / n * 1e6

        base = statistics.median([run(primary) for _ in range(RUNS)])
        ours = statistics.median([run(replica) for _ in range(RUNS)])
        print(f"point read over HTTP (Hrana v2 pipeline), median of {RUNS} x {n}:")
        print(f"  baseline primary node : {base:8.1f} us/read")
        print(f"  replica node          : {ours:8.1f} us/read   ratio {ours / base:.2f}")
    finally:
        replica.stop()
        primary.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_pull(Path(tmp))
        bench_lag(Path(tmp))
        asyncio.run(bench_point_read(Path(tmp)))
        bench_point_read_http(Path(tmp))


if __name__ == "__main__":
    main()
