"""Why `edgestore serve` runs granian: the same bare Litestar app under granian and uvicorn.

One worker each, access logs off, ``wrk -t1 -c32`` on loopback against ``GET /const``
(bench/http_baseline_app.py). Prints requests/s and p99 per server, medians of RUNS runs,
and the ratio granian / uvicorn.

    .venv/bin/python bench/bench_http_servers.py
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from servers import baseline_cmd, server, uvicorn_baseline_cmd, wrk

RUNS = 3


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"BENCH_DB": str(work / "unused.db"), "PATH": "/usr/bin:/bin"}
        results: dict[str, list[dict[str, float]]] = {"granian": [], "uvicorn": []}
        with (
            server(baseline_cmd(), env, work, "/const") as g,
            server(uvicorn_baseline_cmd(), env, work, "/const") as u,
        ):
            for url in (g, u):
                wrk(url + "/const", seconds=1)
            for _ in range(RUNS):
                results["granian"].append(wrk(g + "/const"))
                results["uvicorn"].append(wrk(u + "/const"))
    med = {
        k: (statistics.median(r["rps"] for r in v), statistics.median(r["p99"] for r in v))
        for k, v in results.items()
    }
    print(f"bare Litestar GET /const, 1 worker, wrk -c32, medians of {RUNS}")
    for name, (rps, p99) in med.items():
        print(f"  {name:<8} {rps:>9.0f} req/s   p99 {p99 * 1000:6.2f} ms")
    print(f"  ratio granian/uvicorn: {med['granian'][0] / med['uvicorn'][0]:.2f}x requests/s")


if __name__ == "__main__":
    main()
