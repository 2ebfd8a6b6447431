"""Benchmarks of `edgestore migrate` against named baselines, measured in one run.

    .venv/bin/python bench/bench_migrate.py                 # everything (takes a few minutes)
    .venv/bin/python bench/bench_migrate.py --rows 200000   # smaller comparison table
    .venv/bin/python bench/bench_migrate.py --rss-sizes 100000,1000000,5000000

1. `edgestore migrate run` vs `db-to-sqlite` (PyPI) on one generated table with mixed types:
   wall time ratio (target >= 3x faster), peak RSS ratio (target <= 0.5x), and whether each
   result validates against the source (edgestore's validator, same normalisation for both).
2. Peak RSS of `edgestore migrate run` at several table sizes (target: flat within 10%).
3. Throughput against raw stdlib `sqlite3.executemany` of the same rows already in memory
   (target >= 0.6x): the import alone (snapshot -> SQLite), export + import as separate
   commands, and what `migrate run` does before it validates (`pipeline.move`: Postgres ->
   snapshot chunks + SQLite in one pass).

Both tools run as subprocesses against the same Postgres (started here with pgserver, Unix
socket); peak RSS is the child's ru_maxrss from wait4. Times are medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg

from edgestore.migrate import export_snapshot, import_snapshot, read_manifest, validate
from edgestore.migrate.pipeline import move
from edgestore.migrate.snapshot import iter_chunk_batches

BIN = Path(sys.executable).parent
TABLE_SQL = """
CREATE TABLE bench (
    id bigint PRIMARY KEY,
    qty integer NOT NULL,
    big bigint,
    price numeric(12, 2),
    ratio double precision,
    name text,
    code varchar(16),
    active boolean,
    born date,
    seen timestamptz,
    payload bytea,
    doc jsonb
)
"""
FILL_SQL = """
INSERT INTO bench
SELECT g, g %% 1000, g::bigint * 7919, (g %% 100000) / 100.0, g / 7.0,
       CASE WHEN g %% 10 = 0 THEN NULL ELSE 'customer name ' || g END,
       substr(md5(g::text), 1, 16), g %% 3 = 0,
       DATE '2000-01-01' + (g %% 9000)::int,
       TIMESTAMPTZ '2020-01-01 00:00:00+00' + g * INTERVAL '1 second',
       decode(lpad(to_hex(g), 16, '0'), 'hex'),
       jsonb_build_object('n', g, 'tag', 'k' || (g %% 17))
FROM generate_series(%s::bigint, %s::bigint) g
"""


def start_postgres() -> tuple[Any, Path]:
    pgdata = Path(tempfile.mkdtemp(prefix="edgestore-bench-pg-"))
    pgdata.chmod(0o755)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver.get_server(pgdata, cleanup_mode="stop"), pgdata


def make_table(server: Any, rows: int) -> str:
    name = f"bench_{rows}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return str(server.get_uri(name))
        conn.execute(f"CREATE DATABASE {name}")
    dsn = str(server.get_uri(name))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
        step = 500_000
        for lo in range(1, rows + 1, step):
            conn.execute(FILL_SQL, (lo, min(rows, lo + step - 1)))
        conn.execute("VACUUM ANALYZE bench")
    return dsn


# Runs the command from a small launcher process and reports the command's own peak RSS:
# ru_maxrss survives fork+exec on Linux, so a child forked straight from this (large) process
# would report our size, not its own.
_LAUNCHER = """
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
sys.stderr.write(f"\\nMAXRSS_KB {usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (bytes) of the command, its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{proc.stderr}")
    maxrss_kb = int(proc.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0])
    return wall, maxrss_kb * 1024, proc.stderr


def edgestore_cmd(dsn: str, target: Path) -> list[str]:
    code = "import sys; from edgestore.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, "migrate", "run", "--from", dsn, "--to", str(target)]


def db_to_sqlite_cmd(dsn: str, target: Path) -> list[str]:
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    return [str(BIN / "db-to-sqlite"), url, str(target), "--table", "bench"]


def fresh(path: Path) -> Path:
    for p in path.parent.glob(path.name + "*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return path


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def compare_tools(dsn: str, rows: int, work: Path, repeat: int) -> None:
    print(f"\n== edgestore migrate run vs db-to-sqlite, {rows:,} rows, median of {repeat}")
    ours_t, ours_m, base_t, base_m = [], [], [], []
    ours_db, base_db = work / "ours.db", work / "d2s.db"
    for _ in range(repeat):
        t, m, _ = timed(edgestore_cmd(dsn, fresh(ours_db)))
        ours_t.append(t)
        ours_m.append(m)
        t, m, _ = timed(db_to_sqlite_cmd(dsn, fresh(base_db)))
        base_t.append(t)
        base_m.append(m)
    bt, ot = statistics.median(base_t), statistics.median(ours_t)
    bm, om = statistics.median(base_m), statistics.median(ours_m)
    print(
        f"  wall   db-to-sqlite {bt:7.2f}s  edgestore {ot:7.2f}s  -> {bt / ot:.2f}x faster "
        f"(target >= 3x)"
    )
    print(
        f"  RSS    db-to-sqlite {mib(bm):>8}  edgestore {mib(om):>8}  -> {om / bm:.2f}x "
        f"(target <= 0.5x)"
    )
    ours_ok = validate(dsn, ours_db)["ok"]
    base_report = validate(dsn, base_db, limit=2)
    bench = base_report["tables"][0]
    at_least = "" if bench.get("differing_rows_exact", True) else ">= "
    print(
        f"  validates against the source: edgestore {ours_ok}, db-to-sqlite "
        f"{base_report['ok']} ({at_least}{bench['differing_rows']:,} of {rows:,} rows differ)"
    )
    for d in bench["differences"][:1]:
        print(f"    e.g. {d.get('key')}: {d.get('columns')}")


def rss_by_size(server: Any, sizes: list[int], work: Path) -> None:
    print("\n== peak RSS of edgestore migrate run by table size")
    peaks = []
    for n in sizes:
        dsn = make_table(server, n)
        t, m, _ = timed(edgestore_cmd(dsn, fresh(work / f"rss_{n}.db")))
        peaks.append(m)
        print(f"  {n:>10,} rows  {mib(m):>8}  ({t:.1f}s, {n / t:,.0f} rows/s end to end)")
        fresh(work / f"rss_{n}.db")
    spread = (max(peaks) - min(peaks)) / min(peaks)
    print(f"  spread {100 * spread:.1f}% (target: flat within 10%)")


def throughput(dsn: str, rows: int, work: Path, repeat: int) -> None:
    print(f"\n== throughput vs raw sqlite3.executemany, {rows:,} rows, median of {repeat}")
    snap = work / "snap"
    shutil.rmtree(snap, ignore_errors=True)
    exp_t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        export_snapshot(dsn, snap, replace=True)
        exp_t.append(time.perf_counter() - t0)
    # what `edgestore migrate run` does before validating: the export loads SQLite as it goes
    run_t = []
    for _ in range(repeat):
        target = fresh(work / "run.db")
        t0 = time.perf_counter()
        move(dsn, target, work / "run.snap", replace_snapshot=True)
        run_t.append(time.perf_counter() - t0)
    manifest = read_manifest(snap)
    table = manifest.plan.table("bench")
    imp_t = []
    for _ in range(repeat):
        target = fresh(work / "imp.db")
        t0 = time.perf_counter()
        import_snapshot(snap, target)
        imp_t.append(time.perf_counter() - t0)
    # the same rows, already in memory as tuples, into the same table with stdlib sqlite3
    data = [
        tuple(r)
        for chunk in manifest.table_data("bench").chunks
        for batch in iter_chunk_batches(snap, chunk)
        for r in batch
    ]
    insert = f"INSERT INTO bench VALUES ({', '.join('?' for _ in table.columns)})"
    base_t = []
    for _ in range(repeat):
        target = fresh(work / "raw.db")
        db = sqlite3.connect(target, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(table.create_sql)
        t0 = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(insert, data)
        db.execute("COMMIT")
        base_t.append(time.perf_counter() - t0)
        db.close()
    del data
    b, i, e = statistics.median(base_t), statistics.median(imp_t), statistics.median(exp_t)
    r = statistics.median(run_t)
    print(f"  sqlite3.executemany (rows in memory)  {rows / b:>10,.0f} rows/s")
    print(f"  edgestore import (snapshot -> SQLite)   {rows / i:>10,.0f} rows/s  -> {b / i:.2f}x")
    print(
        f"  edgestore export + import (Postgres -> SQLite)  {rows / (e + i):>10,.0f} rows/s  "
        f"-> {b / (e + i):.2f}x (separate commands)"
    )
    print(
        f"  edgestore run, Postgres -> snapshot + SQLite in one pass (no validation)  "
        f"{rows / r:>10,.0f} rows/s  -> {b / r:.2f}x (target >= 0.6x)"
    )
    print(f"  raw seconds (medians): baseline {b:.2f}, export {e:.2f}, import {i:.2f}, run {r:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rss-sizes", default="100000,1000000,5000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma list of: compare,rss,throughput")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    server, pgdata = start_postgres()
    work = Path(tempfile.mkdtemp(prefix="edgestore-bench-"))
    try:
        t0 = time.perf_counter()
        dsn = make_table(server, args.rows)
        print(f"generated {args.rows:,} rows in Postgres in {time.perf_counter() - t0:.1f}s")
        if "compare" not in skip:
            compare_tools(dsn, args.rows, work, args.repeat)
        if "rss" not in skip:
            rss_by_size(server, [int(s) for s in args.rss_sizes.split(",")], work)
        if "throughput" not in skip:  # last: it holds all rows in memory for the baseline
            throughput(dsn, args.rows, work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


if __name__ == "__main__":
    main()
