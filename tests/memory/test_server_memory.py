"""The memory of a real `edgestore serve`: every process counted, split by component, and
given back after load. Measured from outside with psutil, not from the server's own figures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psutil

from tests.server import EdgestoreServer

MiB = 2**20


def tree(pid: int) -> dict[int, int]:
    """RSS by pid of a process and all its descendants."""
    root = psutil.Process(pid)
    out = {pid: root.memory_info().rss}
    for child in root.children(recursive=True):
        out[child.pid] = child.memory_info().rss
    return out


def test_one_process_server_reports_its_whole_memory_by_component(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "app.db") as server:
        assert server.proc is not None
        http = httpx.Client(base_url=server.url, timeout=10)
        http.post("/api/v1/sql", json={"sql": "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"})
        for i in range(50):
            http.post("/api/v1/sql", json={"sql": "INSERT INTO t(v) VALUES (?)", "args": [str(i)]})
            http.post("/api/v1/sql", json={"sql": "SELECT * FROM t WHERE id = ?", "args": [i]})
        time.sleep(1.5)  # a monitor sample after the traffic
        # One process: no granian master next to a worker.
        assert psutil.Process(server.proc.pid).children(recursive=True) == []
        body = http.get("/api/v1/memory").json()
        measured = psutil.Process(server.proc.pid).memory_info().rss
        http.close()
    breakdown = body["breakdown"]
    assert breakdown["other_processes"] == {}
    assert breakdown["total_bytes"] == breakdown["own_rss_bytes"]
    assert abs(breakdown["total_bytes"] - measured) < 0.1 * measured
    assert body["rss_bytes"] == breakdown["total_bytes"]
    parts = breakdown["components"]
    assert set(parts) == {
        "cache",
        "sqlite",
        "streams",
        "python_heap",
        "allocator_free",
        "code",
        "rest",
    }
    assert parts["sqlite"] > 0
    assert parts["python_heap"] > 0
    assert parts["code"] > 0
    assert sum(parts.values()) <= breakdown["own_rss_bytes"] * 1.01 + sum(
        v for k, v in parts.items() if k in ("allocator_free",)
    )
    roles = sorted(c["role"] for c in breakdown["connections"])
    assert "writer" in roles
    assert any(c["page_cache_bytes"] for c in breakdown["connections"])


def test_budget_counts_every_process_with_several_workers(tmp_path: Path) -> None:
    env = {"EDGESTORE_REPLICATION": "false", "EDGESTORE_MEMORY_SAMPLE_INTERVAL": "0.2"}
    with EdgestoreServer(tmp_path / "app.db", args=["--workers", "2"], env=env) as server:
        assert server.proc is not None
        # Both workers up: the server's tree holds the master and two workers.
        deadline = time.monotonic() + 30
        while len(tree(server.proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = tree(server.proc.pid)
        assert len(pids) == 3, pids
        time.sleep(0.6)
        body = httpx.get(server.url + "/api/v1/memory", timeout=10).json()
        pids = tree(server.proc.pid)
    breakdown = body["breakdown"]
    others = {int(p) for p in breakdown["other_processes"]}
    # The answering worker counts the master and its sibling worker.
    assert len(others) == 2
    assert others < set(pids)
    assert server.proc.pid in others
    whole = sum(pids.values())
    assert abs(breakdown["total_bytes"] - whole) < 0.15 * whole


async def _load(url: str, clients: int, requests: int) -> None:
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=httpx.Limits(max_connections=clients)
    ) as http:
        sem = asyncio.Semaphore(clients)

        async def one(i: int) -> None:
            async with sem:
                r = await http.get(f"/api/v1/tables/items/rows/{1 + i % 20}")
                assert r.status_code in (200, 404), r.text

        await asyncio.gather(*(one(i) for i in range(requests)))


def test_idle_memory_returns_to_its_start_after_load(tmp_path: Path) -> None:
    env = {"EDGESTORE_IDLE_TIMEOUT": "1", "EDGESTORE_MEMORY_SAMPLE_INTERVAL": "0.5"}
    with EdgestoreServer(tmp_path / "app.db", env=env) as server:
        assert server.proc is not None
        http = httpx.Client(base_url=server.url, timeout=10)
        for i in range(20):
            http.post("/api/v1/tables/items/rows", json={"name": f"n{i}", "price": i})
        http.close()
        time.sleep(3)  # connections closed, first release done
        start = sum(tree(server.proc.pid).values())
        for _ in range(3):
            asyncio.run(_load(server.url, clients=100, requests=3000))
        loaded = sum(tree(server.proc.pid).values())
        deadline = time.monotonic() + 30
        now = loaded
        while time.monotonic() < deadline:
            time.sleep(1)
            now = sum(tree(server.proc.pid).values())
            if now <= start * 1.05:
                break
    assert now <= start * 1.05, (start / MiB, loaded / MiB, now / MiB)
