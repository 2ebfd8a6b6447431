"""Random point reads over a realistic table, against named baselines of the same run.

Workload: one SQLite file, ``items(id INTEGER PRIMARY KEY, name TEXT, price NUMERIC, payload
TEXT)`` with ~300 B of JSON per row; every request reads a random id (wrk Lua scripts pick it),
so most reads miss the query cache, as users' traffic does. edgestore runs with its default
settings. Every server is one Granian worker:

* ``const``   bare Litestar route returning a constant dict (bench/http_baseline_app.py)
* ``inline``  bare Litestar route doing the select with inline stdlib sqlite3 (same file)
* ``inline_post``  the same bare select over ``POST /query`` with a JSON body like the query
  API's: the peer of ``query`` for what reading a request body costs under Granian
* ``rest``    edgestore ``GET /api/v1/tables/items/rows/{id}``
* ``query``   edgestore JSON query API ``POST /api/v1/query``
* ``hrana2`` / ``hrana3``  ``POST /v2/pipeline`` / ``/v3/pipeline`` [execute select, close]
* ``ws``      Hrana over WebSocket (hrana3; a Python ``websockets`` client, one stream per
  connection; the client shares the 2 cores, so this figure is client-bound)

Targets are interleaved (one wrk run of each, then again), RUNS times; figures are medians,
ratios are medians of per-round ratios. libSQL's reference Hrana server is not compared: it
is not published on PyPI or npm (only as source), so it cannot be installed here.

Needs ``wrk`` (Debian: ``apt-get install wrk``); .ci/run does not run benchmarks.

    .venv/bin/python bench/bench_reads.py                 # 100k rows, 32 connections
    .venv/bin/python bench/bench_reads.py curve           # 10k/100k/1M rows x 1/32/256 conns
    .venv/bin/python bench/bench_reads.py --only rest,inline --seconds 5
    .venv/bin/python bench/bench_reads.py curve --curve-rows 100000 --curve-connections 1,256

Every row also gives the server's CPU time per request (user + system of its processes over
the run, from /proc): on a CPU-bound server throughput is its inverse, and unlike req/s and
p99 it hardly moves with the machine's other load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

from servers import ServerURL, baseline_cmd, edgestore_cmd, edgestore_env, server, tree_cpu, wrk

RUNS = 3
SECONDS = 10
CONNECTIONS = 32
ROWS = 100_000
SELECT = "SELECT * FROM items WHERE id = ?"
TARGETS = ("const", "inline", "inline_post", "rest", "query", "hrana2", "hrana3", "ws")
CURVE_ROWS = (10_000, 100_000, 1_000_000)
CURVE_CONNECTIONS = (1, 32, 256)

Figures = dict[str, dict[str, list[float]]]
"""target -> {"rps" | "p99" (ms) | "cpu_us" (server CPU per request) -> one value per run}"""


def make_db(path: Path, rows: int) -> None:
    """The items table, ``rows`` rows with ~300 B JSON payloads, checkpointed."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price NUMERIC, payload TEXT)"
    )
    rnd = random.Random(1)

    def row(i: int) -> tuple[int, str, float, str]:
        payload = {
            "sku": f"SKU-{i:08d}",
            "tags": [f"tag{rnd.randrange(50)}" for _ in range(5)],
            "dims": {"w": rnd.random(), "h": rnd.random(), "d": rnd.random()},
            "note": "x" * rnd.randrange(120, 160),
        }
        return i, f"item-{i}", round(rnd.uniform(1, 1000), 2), json.dumps(payload)

    with conn:
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)", (row(i) for i in range(1, rows + 1))
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def lua(work: Path, name: str, rows: int, method: str, path: str, body: str | None) -> Path:
    """A wrk script: ``{id}`` in path/body becomes a random id in 1..rows per request."""
    script = work / f"{name}-{rows}.lua"
    fmt = "string.format(%s, id)"
    path_expr = fmt % json.dumps(path.replace("{id}", "%d")) if "{id}" in path else json.dumps(path)
    body_expr = "nil" if body is None else fmt % json.dumps(body.replace("{id}", "%d"))
    script.write_text(
        f"""
math.randomseed(os.time() + tonumber(tostring({{}}):sub(8), 16))
wrk.headers["Content-Type"] = "application/json"
request = function()
  local id = math.random(1, {rows})
  return wrk.format("{method}", {path_expr}, nil, {body_expr})
end
"""
    )
    return script


def _hrana_body() -> str:
    stmt = {"sql": SELECT, "args": [{"type": "integer", "value": "{id}"}]}
    return json.dumps(
        {"baton": None, "requests": [{"type": "execute", "stmt": stmt}, {"type": "close"}]}
    )


_QUERY_BODY = json.dumps({"sql": SELECT, "params": ["{id}"]}).replace('"{id}"', "{id}")

HTTP_TARGETS: dict[str, tuple[str, str, str, str | None]] = {
    # name: (server, method, path, body)
    "const": ("base", "GET", "/const", None),
    "inline": ("base", "GET", "/point/{id}", None),
    "inline_post": ("base", "POST", "/query", _QUERY_BODY),
    "rest": ("ours", "GET", "/api/v1/tables/items/rows/{id}", None),
    "query": ("ours", "POST", "/api/v1/query", _QUERY_BODY),
    "hrana2": ("ours", "POST", "/v2/pipeline", _hrana_body()),
    "hrana3": ("ours", "POST", "/v3/pipeline", _hrana_body()),
}


async def _ws_run(url: str, rows: int, connections: int, seconds: float) -> dict[str, float]:
    import websockets

    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        rnd = random.Random()
        async with websockets.connect(url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "hello", "jwt": None}))
            await ws.recv()
            open_stream = {"type": "open_stream", "stream_id": 1}
            await ws.send(json.dumps({"type": "request", "request_id": 0, "request": open_stream}))
            await ws.recv()
            n = 1
            while time.monotonic() < deadline:
                args = [{"type": "integer", "value": str(rnd.randint(1, rows))}]
                req = {"type": "execute", "stream_id": 1, "stmt": {"sql": SELECT, "args": args}}
                started = time.perf_counter()
                await ws.send(json.dumps({"type": "request", "request_id": n, "request": req}))
                reply = json.loads(await ws.recv())
                latencies.append(time.perf_counter() - started)
                assert reply["type"] == "response_ok", reply
                n += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    return {"rps": len(latencies) / elapsed, "p99": p99, "non2xx": 0.0, "requests": len(latencies)}


def run_target(
    name: str,
    urls: dict[str, ServerURL],
    scripts: dict[str, Path],
    conns: int,
    secs: int,
    rows: int,
) -> dict[str, float]:
    """One run of one target: rps, p99 (s) and the server's CPU microseconds per request."""
    where = "ours" if name == "ws" else HTTP_TARGETS[name][0]
    pid = urls[where].pid
    cpu_before = tree_cpu(pid)
    if name == "ws":
        ws_url = urls["ours"].replace("http://", "ws://") + "/"
        out = asyncio.run(_ws_run(ws_url, rows, conns, secs))
    else:
        out = wrk(urls[where] + "/", connections=conns, seconds=secs, script=scripts[name])
        assert out["non2xx"] == 0, (name, out)
    # CPU time per request of the server's processes: what the target costs, whatever else
    # loads the machine (requests/s and p99 also measure the other load of the moment).
    out["cpu_us"] = 1e6 * (tree_cpu(pid) - cpu_before) / max(1.0, out["requests"])
    return out


def measure(
    work: Path, rows: int, conns: int, secs: int, runs: int, targets: tuple[str, ...]
) -> Figures:
    db = work / f"items-{rows}.db"
    if not db.exists():
        make_db(db, rows)
    scripts = {n: lua(work, n, rows, m, p, b) for n, (_, m, p, b) in HTTP_TARGETS.items()}
    ours_cmd = edgestore_cmd(db, schemas=False)
    figures: Figures = {t: {"rps": [], "p99": [], "cpu_us": []} for t in targets}
    with ExitStack() as stack:
        urls = {
            "ours": stack.enter_context(server(ours_cmd, edgestore_env(db), work, "/health")),
            "base": stack.enter_context(
                server(baseline_cmd(), dict(os.environ, BENCH_DB=str(db)), work, "/const")
            ),
        }
        for t in targets:  # warm up each target (page cache, JIT-free but connection pools)
            run_target(t, urls, scripts, conns, 1, rows)
        for _ in range(runs):
            for t in targets:
                out = run_target(t, urls, scripts, conns, secs, rows)
                figures[t]["rps"].append(out["rps"])
                figures[t]["p99"].append(out["p99"] * 1000)
                figures[t]["cpu_us"].append(out["cpu_us"])
    return figures


def _ratio(figures: Figures, t: str, peer: str, key: str) -> float:
    """Median of the per-round ratios t / peer (rounds are neighbours in time)."""
    if peer not in figures or t not in figures:
        return float("nan")
    pairs = zip(figures[t][key], figures[peer][key], strict=True)
    return statistics.median(a / b for a, b in pairs)


def report(figures: Figures, title: str) -> None:
    print(f"\n[{title}]  load average {os.getloadavg()[0]:.1f}")
    # "CPU x inline": inline's server CPU per request over this target's, the throughput
    # ratio of a CPU-bound server (it holds up on a loaded machine, req/s and p99 do not).
    print(
        f"  {'target':<11} {'req/s':>7} {'p99 ms':>7} {'CPU us':>7}  {'x inline':>8} "
        f"{'x rest':>7} {'CPU x inline':>12}  runs: req/s; p99 ms"
    )

    def ratio(t: str, peer: str, key: str) -> float:
        return _ratio(figures, t, peer, key)

    for t, f in figures.items():
        print(
            f"  {t:<11} {statistics.median(f['rps']):>7.0f} {statistics.median(f['p99']):>7.1f} "
            f"{statistics.median(f['cpu_us']):>7.1f}  {ratio(t, 'inline', 'rps'):>7.2f}x "
            f"{ratio(t, 'rest', 'rps'):>6.2f}x {1 / ratio(t, 'inline', 'cpu_us'):>11.2f}x  "
            f"{[round(v) for v in f['rps']]}; {[round(v, 1) for v in f['p99']]}"
        )
    checks: list[tuple[str, Callable[[], float], str]] = []
    for t in ("rest", "query"):
        if t in figures and "inline" in figures:
            checks.append((f"{t} req/s x inline", lambda t=t: ratio(t, "inline", "rps"), ">= 0.9"))
            checks.append((f"{t} p99 x inline", lambda t=t: ratio(t, "inline", "p99"), "<= 1.3"))
            # On a CPU-bound server throughput is the inverse of CPU per request; this figure
            # holds up on a loaded machine, where req/s and p99 also measure the other load.
            checks.append(
                (
                    f"{t} CPU x inline",
                    lambda t=t: 1 / ratio(t, "inline", "cpu_us"),
                    ">= 0.9 on a CPU-bound server",
                )
            )
    if "query" in figures and "inline_post" in figures:
        # Not a target: the same comparison against the bare app reading a JSON body too.
        checks.append(
            ("query req/s x inline_post", lambda: ratio("query", "inline_post", "rps"), "info")
        )
        checks.append(
            (
                "query CPU x inline_post",
                lambda: 1 / ratio("query", "inline_post", "cpu_us"),
                "info",
            )
        )
    for t in ("hrana2", "hrana3"):
        if t in figures and "rest" in figures:
            checks.append((f"{t} req/s x rest", lambda t=t: ratio(t, "rest", "rps"), ">= 0.8"))
            checks.append((f"{t} p99 x rest", lambda t=t: ratio(t, "rest", "p99"), "<= 1.5"))
    for label, fn, target in checks:
        print(f"  {label:<24} {fn():5.2f}x  (target {target})")


def report_curve(curve: dict[tuple[int, int], Figures]) -> None:
    """p99 growth with the connection count, per table size: must not outgrow the count."""
    print("\n[curve] p99 ms (median) per target; growth between connection counts")
    conns = sorted({c for _, c in curve})
    for rows in sorted({r for r, _ in curve}):
        for t in next(iter(curve.values())):
            p99 = [statistics.median(curve[rows, c][t]["p99"]) for c in conns]
            rps = [statistics.median(curve[rows, c][t]["rps"]) for c in conns]
            steps = []
            for (c0, a), (c1, b) in pairwise(zip(conns, p99, strict=True)):
                verdict = "ok" if b / a <= c1 / c0 else "GROWS FASTER"
                steps.append(f"{c0}->{c1}: {b / a:.1f}x (<= {c1 / c0:.0f}x {verdict})")
            print(
                f"  {rows:>9,} rows {t:<11} p99 {[round(v, 2) for v in p99]}  "
                f"req/s {[round(v) for v in rps]}  " + "; ".join(steps)
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="reads", choices=["reads", "curve"])
    ap.add_argument("--only", default=",".join(TARGETS))
    ap.add_argument("--runs", type=int, default=RUNS)
    ap.add_argument("--seconds", type=int, default=SECONDS)
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--connections", type=int, default=CONNECTIONS)
    ap.add_argument("--curve-rows", default=",".join(map(str, CURVE_ROWS)))
    ap.add_argument("--curve-connections", default=",".join(map(str, CURVE_CONNECTIONS)))
    args = ap.parse_args()
    targets = tuple(t for t in args.only.split(",") if t)
    with tempfile.TemporaryDirectory(prefix="edgestore-reads-") as tmp:
        work = Path(tmp)
        if args.mode == "reads":
            figures = measure(work, args.rows, args.connections, args.seconds, args.runs, targets)
            report(
                figures,
                f"{args.rows:,} rows, wrk -t1 -c{args.connections} {args.seconds}s x {args.runs}",
            )
            return
        # The cost curve: throughput may fall as the table outgrows the page cache; p99 should
        # not grow faster than the connection count.
        curve: dict[tuple[int, int], Figures] = {}
        for rows in (int(r) for r in args.curve_rows.split(",")):
            for conns in (int(c) for c in args.curve_connections.split(",")):
                figures = measure(work, rows, conns, args.seconds, args.runs, targets)
                report(figures, f"curve: {rows:,} rows, {conns} connections")
                curve[rows, conns] = figures
        report_curve(curve)


if __name__ == "__main__":
    main()
