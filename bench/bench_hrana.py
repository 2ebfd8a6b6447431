"""Hrana (libSQL wire protocol) benchmarks; each figure is a ratio against a baseline of the run.

Server: ``edgestore serve`` (granian, one worker, access log off, query cache off) on a seeded
``items`` table. Load: ``wrk`` on loopback with a Lua body; medians of RUNS runs.

1. point: ``POST /v2/pipeline`` [execute point-select, close] (what @libsql/client sends for
   one ``execute``) vs ``POST /api/v1/query`` with ``cache: false``. Target >= 0.8x rps.
2. pipeline10: one ``/v2/pipeline`` request with 10 point-selects vs 10 single-select
   requests: point-selects per second both ways.
3. tx50: 50 concurrent ``@libsql/client`` interactive transactions (BEGIN IMMEDIATE, 3
   INSERTs, COMMIT) over http://: all must commit; throughput and p99 (node required).

    .venv/bin/python bench/bench_hrana.py [point] [pipeline10] [tx50]
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from servers import edgestore_cmd, edgestore_env, server

RUNS = 5
SECONDS = 4
CONNECTIONS = 16
ROWS = 10_000
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
JS = REPO / "tests" / "js"


@contextmanager
def edgestore(db: Path, work: Path) -> Iterator[str]:
    """``edgestore serve`` on ``db`` (schemas applied) with the query cache off."""
    env = edgestore_env(db, EDGESTORE_QUERY_CACHE="false")
    with server(edgestore_cmd(db), env, work, "/v2") as url:
        yield url


def seed(db: Path, work: Path) -> None:
    with edgestore(db, work):  # applies the schema
        pass
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM items")
        conn.executemany(
            "INSERT INTO items(id, name, price) VALUES (?, ?, ?)",
            ((i, f"item-{i}", i * 10) for i in range(1, ROWS + 1)),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def lua(work: Path, name: str, path: str, body: object) -> Path:
    script = work / f"{name}.lua"
    text = json.dumps(body).replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(
        f'wrk.method = "POST"\nwrk.path = "{path}"\n'
        f"wrk.body = '{text}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk(url: str, script: Path, seconds: int = SECONDS) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} error responses:\n{out}")
    return {"rps": rps, "p99": float(p99.group(1)) * _UNITS[p99.group(2)] if p99 else 0.0}


def select(i: int) -> dict[str, object]:
    return {
        "type": "execute",
        "stmt": {
            "sql": "SELECT * FROM items WHERE id = ?",
            "args": [{"type": "integer", "value": str(i)}],
        },
    }


def line(name: str, base: float, ours: float, unit: str, target: str) -> str:
    return (
        f"{name:<34} baseline {base:>10.1f}  ours {ours:>10.1f} {unit:<10} "
        f"ratio {ours / base:5.2f}x  ({target})"
    )


def section_point(url: str, work: Path) -> None:
    ours_s = lua(
        work, "hrana", "/v2/pipeline", {"baton": None, "requests": [select(1), {"type": "close"}]}
    )
    base_s = lua(
        work,
        "query",
        "/api/v1/query",
        {"sql": "SELECT * FROM items WHERE id = ?", "params": [1], "cache": False},
    )
    wrk(url, ours_s, 1)
    wrk(url, base_s, 1)
    ours, base = [], []
    for _ in range(RUNS):
        ours.append(wrk(url, ours_s)["rps"])
        base.append(wrk(url, base_s)["rps"])
    print(
        line(
            "point-select /v2/pipeline",
            statistics.median(base),
            statistics.median(ours),
            "req/s",
            "vs /api/v1/query uncached; target >= 0.8x",
        )
    )


def section_pipeline10(url: str, work: Path) -> None:
    ten = lua(
        work,
        "ten",
        "/v2/pipeline",
        {"baton": None, "requests": [*[select(i) for i in range(1, 11)], {"type": "close"}]},
    )
    one = lua(
        work, "one", "/v2/pipeline", {"baton": None, "requests": [select(1), {"type": "close"}]}
    )
    wrk(url, ten, 1)
    batched, single = [], []
    for _ in range(RUNS):
        batched.append(wrk(url, ten)["rps"] * 10)
        single.append(wrk(url, one)["rps"])
    print(
        line(
            "10 selects in one pipeline",
            statistics.median(single),
            statistics.median(batched),
            "selects/s",
            "vs 10 separate requests",
        )
    )


def section_tx50(url: str) -> None:
    node = shutil.which("node")
    if node is None:
        print("tx50: skipped, node is not installed")
        return
    if not (JS / "node_modules" / "@libsql" / "client").is_dir():
        subprocess.run(["bash", str(JS / "install.sh")], check=True)
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(
            [node, str(JS / "hrana_bench_tx.mjs"), url, "50"],
            cwd=JS,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    for r in runs:
        if r["committed"] != 50 or r["failed"]:
            print(f"tx50: NOT all committed: {r}")
    print(
        f"{'50 concurrent JS transactions':<34} committed {min(r['committed'] for r in runs)}/50 "
        f"every run; median {statistics.median(r['tps'] for r in runs):.1f} tx/s, "
        f"p50 {statistics.median(r['p50_ms'] for r in runs):.1f} ms, "
        f"p99 {statistics.median(r['p99_ms'] for r in runs):.1f} ms "
        f"(BEGIN IMMEDIATE + 3 INSERT + COMMIT, 5 HTTP round trips each)"
    )


def main() -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    wanted = set(sys.argv[1:]) or {"point", "pipeline10", "tx50"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = work / "bench.db"
        seed(db, work)
        with edgestore(db, work) as url:
            print(f"edgestore serve (granian, 1 worker), wrk -c{CONNECTIONS}, medians of {RUNS}")
            if "point" in wanted:
                section_point(url, work)
            if "pipeline10" in wanted:
                section_pipeline10(url, work)
            if "tx50" in wanted:
                section_tx50(url)


if __name__ == "__main__":
    main()
