"""/metrics follows prometheus-client's conventions: its parser reads every line, counters are
``*_total`` counters, latencies are histograms, ``process_*`` metrics are there, the content
type is the library's (once), and requests no route took (404, 405) are counted."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from .test_sql_api import q


def families(client: TestClient[Any]) -> dict[str, Any]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE_LATEST
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def sample(fams: dict[str, Any], family: str, name: str, **labels: str) -> float:
    for s in fams[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_exposition_is_prometheus_client_format(client: TestClient[Any]) -> None:
    q(client, "SELECT 1")
    fams = families(client)
    assert fams["edgestore_http_requests"].type == "counter"
    assert fams["edgestore_http_request_duration_seconds"].type == "histogram"
    assert fams["edgestore_cache_hits"].type == "counter"
    assert fams["edgestore_cache_misses"].type == "counter"
    assert fams["edgestore_memory_component_bytes"].type == "gauge"
    assert "edgestore_cache_hit_ratio" not in fams
    assert sample(fams, "process_resident_memory_bytes", "process_resident_memory_bytes") > 0
    assert sample(fams, "process_cpu_seconds", "process_cpu_seconds_total") > 0
    assert (
        sample(
            fams,
            "edgestore_http_request_duration_seconds",
            "edgestore_http_request_duration_seconds_count",
            method="POST",
            route="/api/v1/query",
        )
        >= 1
    )
    components = {s.labels["component"] for s in fams["edgestore_memory_component_bytes"].samples}
    assert {"cache", "sqlite", "python_heap", "rest"} <= components


def test_cache_hits_and_misses_are_counters_that_move(client: TestClient[Any]) -> None:
    before = families(client)
    hits0 = sample(before, "edgestore_cache_hits", "edgestore_cache_hits_total", cache="query")
    misses0 = sample(
        before, "edgestore_cache_misses", "edgestore_cache_misses_total", cache="query"
    )
    for _ in range(3):
        q(client, "SELECT count(*) FROM items")
    after = families(client)
    misses = sample(after, "edgestore_cache_misses", "edgestore_cache_misses_total", cache="query")
    hits = sample(after, "edgestore_cache_hits", "edgestore_cache_hits_total", cache="query")
    assert misses == misses0 + 1
    assert hits == hits0 + 2
    # The reasons misses skipped the cache are counters too (none skipped it here).
    assert after["edgestore_cache_skipped"].type == "counter"
    reasons = {s.labels["reason"] for s in after["edgestore_cache_skipped"].samples}
    assert reasons == {"first_sighting", "bypass", "full"}
    assert sample(after, "edgestore_cache_bypassing", "edgestore_cache_bypassing") == 0


def test_unrouted_requests_are_counted(client: TestClient[Any]) -> None:
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.delete("/health").status_code == 405
    fams = families(client)
    name = "edgestore_http_requests_total"
    fam = "edgestore_http_requests"
    assert sample(fams, fam, name, method="GET", route="unmatched", status="404") == 2
    assert sample(fams, fam, name, method="DELETE", route="unmatched", status="405") == 1
