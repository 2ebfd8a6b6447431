"""Ops routes: health, readiness, metrics, memory, cache API, pressure refusal, OpenAPI."""

from __future__ import annotations

import time
from typing import Any

from litestar.testing import TestClient

from .conftest import AppFactory
from .test_sql_api import assert_error, q

METRIC_NAMES = (
    "edgestore_memory_rss_bytes",
    "edgestore_memory_pressure_level",
    "edgestore_cache_bytes",
    "edgestore_cache_hits_total",
    "edgestore_cache_misses_total",
    "edgestore_pool_connections_open",
    "edgestore_http_requests_total",
    "edgestore_http_request_duration_seconds_bucket",
)


def test_health_and_ready(client: TestClient[Any]) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ok"
    assert ready["database"] == "ok"
    assert ready["memory_level"] == "normal"
    assert "connections_open" in ready["pool"]


def test_metrics_text(client: TestClient[Any]) -> None:
    q(client, "SELECT 1")
    client.get("/api/v1/tables/items/rows")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in METRIC_NAMES:
        assert f"\n{name}" in "\n" + text, name
    assert (
        'edgestore_http_requests_total{method="POST",route="/api/v1/query",status="200"} 1.0'
        in text
    )
    assert 'route="/api/v1/tables/{table_name}/rows"' in text
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_cache_api(client: TestClient[Any]) -> None:
    assert_error(client.get("/api/v1/cache/k1"), 404, "NotFoundError")
    r = client.put("/api/v1/cache/k1", json={"a": [1, 2]})
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/cache/k1").json() == {"key": "k1", "value": {"a": [1, 2]}}
    assert client.put("/api/v1/cache/k2?ttl=0.2", json="short").status_code == 200
    assert client.get("/api/v1/cache/k2").json()["value"] == "short"
    for _ in range(100):  # bounded wait for the TTL
        if client.get("/api/v1/cache/k2").status_code == 404:
            break
        time.sleep(0.05)
    assert_error(client.get("/api/v1/cache/k2"), 404)
    stats = client.get("/api/v1/cache").json()
    assert isinstance(stats, dict)
    assert stats
    assert client.delete("/api/v1/cache/k1").status_code == 204
    assert_error(client.get("/api/v1/cache/k1"), 404)
    assert_error(client.put("/api/v1/cache/k3?ttl=-1", json=1), 400)


def test_memory_routes(client: TestClient[Any]) -> None:
    snap = client.get("/api/v1/memory").json()
    assert isinstance(snap, dict)
    assert snap
    for level in ("light", "standard", "aggressive", "emergency"):
        r = client.post("/api/v1/memory/optimize", json={"level": level})
        assert r.status_code == 200, r.text
    assert_error(client.post("/api/v1/memory/optimize", json={"level": "max"}), 400)
    q(client, "SELECT 1")
    for target in ("query", "kv", "all"):
        r = client.delete(f"/api/v1/memory/cache?target={target}")
        assert r.status_code == 200, r.text
    assert_error(client.delete("/api/v1/memory/cache?target=disk"), 400)


def test_emergency_pressure_refuses_with_503_but_health_answers(app_client: AppFactory) -> None:
    # A budget far below this process's RSS puts the monitor in emergency at once.
    client = app_client(memory_budget_bytes=4 * 1024 * 1024, memory_sample_interval=0.05)
    for _ in range(200):  # bounded wait for the first samples
        if client.get("/api/v1/memory").json().get("level") == "emergency":
            break
        time.sleep(0.05)
    r = q(client, "SELECT 1")
    assert_error(r, 503, "OverloadedError")
    assert int(r.headers["retry-after"]) >= 1
    assert_error(client.get("/api/v1/tables/items/rows"), 503)
    assert client.get("/health").status_code == 200
    assert client.get("/health/ready").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "edgestore_memory_pressure_level 3.0" in metrics.text
    assert client.get("/dashboard").status_code == 200


def test_openapi_lists_every_route(client: TestClient[Any]) -> None:
    spec = client.get("/schema/openapi.json").json()
    paths = spec["paths"]
    expected = {
        "/api/v1/query": {"post"},
        "/api/v1/execute": {"post"},
        "/api/v1/batch": {"post"},
        "/api/v1/tables": {"get"},
        "/api/v1/tables/{table_name}": {"get"},
        "/api/v1/tables/{table_name}/rows": {"get", "post"},
        "/api/v1/tables/{table_name}/rows/{key}": {"get", "patch", "delete"},
        "/api/v1/cache": {"get"},
        "/api/v1/cache/{key}": {"get", "put", "delete"},
        "/health": {"get"},
        "/health/ready": {"get"},
        "/metrics": {"get"},
        "/api/v1/memory": {"get"},
        "/api/v1/memory/optimize": {"post"},
        "/api/v1/memory/cache": {"delete"},
        "/dashboard": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    query = paths["/api/v1/query"]["post"]
    assert {"400", "401", "403", "413", "503"} <= set(query["responses"])
    assert "200" in query["responses"]


def test_dashboard_page_is_self_contained(client: TestClient[Any]) -> None:
    r = client.get("/dashboard")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "http://" not in html
    assert "https://" not in html
    # The chart library is served by the server itself, and the page reads the server's
    # history (the last hour) rather than keeping its own; both by relative URLs, so the page
    # works under any path prefix (tests/web/test_plugin.py).
    assert '<script src="dashboard/uplot.js">' in html
    assert 'fetch("api/v1/history"' in html
    js = client.get("/dashboard/uplot.js")
    assert js.status_code == 200
    assert "uPlot" in js.text
    assert client.get("/dashboard/uplot.css").status_code == 200
    history = client.get("/api/v1/history").json()
    assert {"columns", "slowest", "tables"} <= set(history)
    stats = client.get("/api/v1/stats").json()
    for key in (
        "memory_rss_bytes",
        "memory_pressure_level",
        "cache_bytes",
        "cache_hit_ratio",
        "pool_connections",
        "requests_total",
    ):
        assert key in stats


def test_write_responses_carry_the_replication_position(client: TestClient[Any]) -> None:
    r = client.post("/api/v1/execute", json={"sql": "INSERT INTO items(name) VALUES ('p')"})
    assert r.status_code == 200
    first = r.headers["x-edgestore-position"]
    r = client.post("/api/v1/tables/items/rows", json={"name": "q"})
    second = r.headers["x-edgestore-position"]
    gen1, frame1 = map(int, first.split("."))
    gen2, frame2 = map(int, second.split("."))
    assert (gen2, frame2) > (gen1, frame1)
    assert "x-edgestore-position" not in client.get("/api/v1/tables/items/rows").headers
