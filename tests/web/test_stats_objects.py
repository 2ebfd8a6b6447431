"""The ops routes render the core's typed stats objects as they are: every field of each
object is a key of its JSON (and nothing else is), the values are the core's own, and the
metrics say the same numbers."""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec
from litestar.testing import TestClient

from edgestore.cache.stats import CacheStats, LRUStats, QueryCacheStats
from edgestore.cache.store_cache import StoreCache
from edgestore.memory import Breakdown, Components, ConnectionCache, MemorySnapshot
from edgestore.replication import PrimaryHealth
from edgestore.storage import PoolStats
from edgestore.web.figures import LiveStats
from edgestore.web.plugin import STATE_KEY

from .test_sql_api import q


def app_state(client: TestClient[Any]) -> Any:
    return client.app.state[STATE_KEY]


def fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


def sampled(client: TestClient[Any]) -> dict[str, Any]:
    """``/api/v1/memory`` once the monitor has accounted for the memory at least once."""
    for _ in range(200):  # bounded wait for the first sample (every 0.1 s here)
        body: dict[str, Any] = client.get("/api/v1/memory").json()
        if body["breakdown"] is not None:
            return body
        time.sleep(0.05)
    raise AssertionError("the memory monitor never sampled")


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_memory_route_is_the_monitor_snapshot(client: TestClient[Any]) -> None:
    body = sampled(client)
    snap = msgspec.convert(body, MemorySnapshot)  # the exact types, or it raises
    assert set(body) == fields(MemorySnapshot)
    assert set(body["breakdown"]) == fields(Breakdown)
    assert set(body["breakdown"]["components"]) == fields(Components)
    assert body["breakdown"]["connections"]
    for conn in body["breakdown"]["connections"]:
        assert set(conn) == fields(ConnectionCache)
    monitor = app_state(client).memory
    assert snap.budget_bytes == monitor.budget
    assert snap.level == monitor.level.label == "normal"
    assert snap.thresholds == monitor.snapshot().thresholds
    assert snap.breakdown is not None
    assert snap.rss_bytes == snap.breakdown.total_bytes  # what the levels act on
    parts = snap.breakdown.components
    assert parts.sqlite > 0
    assert parts.python_heap > 0
    assert parts.code > 0


def test_cache_route_is_the_store_cache_stats(client: TestClient[Any]) -> None:
    sql = "SELECT count(*) FROM items"
    for _ in range(3):
        assert q(client, sql, cache=True).status_code == 200
    assert client.put("/api/v1/cache/k", json={"v": 1}).status_code == 200
    body = client.get("/api/v1/cache").json()
    stats = msgspec.convert(body, CacheStats)
    assert set(body) == fields(CacheStats) - {"redis"}  # no Redis tier: no "redis" key
    assert set(body["cache"]) == fields(LRUStats)
    assert set(body["query"]) == fields(QueryCacheStats)
    now = StoreCache.of(app_state(client).store).stats()
    assert stats.query.hits == now.query.hits >= 1
    assert stats.entries == now.entries >= 2  # the cached result and the key/value entry
    assert stats.bytes == now.bytes > 0
    assert stats.max_bytes == app_state(client).settings.cache_max_bytes


def test_ready_renders_pool_and_replication_objects(client: TestClient[Any]) -> None:
    body = client.get("/health/ready").json()
    assert set(body["pool"]) == fields(PoolStats)
    pool = msgspec.convert(body["pool"], PoolStats)
    now = app_state(client).store.pool.stats()
    assert pool.max_connections == now.max_connections == 3
    assert pool.writer_open is now.writer_open is True
    # A served node is a replication primary by default.
    assert msgspec.convert(body["replication"], PrimaryHealth).ok is True
    assert body["replication"]["role"] == "primary"  # the tag that tells primary from replica
    assert set(body["replication"]) == fields(PrimaryHealth) | {"role"}


def test_live_stats_and_metrics_say_the_same_numbers(client: TestClient[Any]) -> None:
    for _ in range(2):
        q(client, "SELECT name FROM items WHERE id = 1", cache=True)
    cache = StoreCache.of(app_state(client).store).stats()
    body = client.get("/api/v1/stats").json()
    assert set(body) == fields(LiveStats)
    live = msgspec.convert(body, LiveStats)
    assert live.cache_bytes == cache.bytes
    assert live.cache_entries == cache.entries
    assert live.pool_max_connections == 3
    text = client.get("/metrics").text
    assert metric(text, 'edgestore_cache_hits_total{cache="query"}') == cache.query.hits
    assert metric(text, 'edgestore_cache_misses_total{cache="query"}') == cache.query.misses
    assert metric(text, "edgestore_cache_bytes") == cache.bytes
    assert metric(text, "edgestore_pool_max_connections") == 3
    snap = sampled(client)
    assert metric(text, "edgestore_memory_budget_bytes") == snap["budget_bytes"]


def test_memory_actions_report_what_they_did(client: TestClient[Any]) -> None:
    r = client.post("/api/v1/memory/optimize", json={"level": "light"})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == ["collect_garbage", "drop_expired"]
    assert set(r.json()["memory"]) == fields(MemorySnapshot)
    r = client.post("/api/v1/memory/optimize", json={"level": "standard"})
    assert "shrink_cache" in r.json()["result"]
    for i in range(3):
        assert client.put(f"/api/v1/cache/k{i}", json=i).status_code == 200
    r = client.delete("/api/v1/memory/cache?target=kv")
    assert r.status_code == 200, r.text
    assert r.json() == {"cleared": "kv", "result": 3}
