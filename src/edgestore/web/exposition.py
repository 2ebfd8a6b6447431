"""``/metrics`` in the Prometheus text format, written by prometheus-client itself.

Requests are counted by ``edgestore.web.metrics.Metrics`` (plain dict additions on the hot
path, measured by bench/bench_metrics.py); this module only turns those figures, the cache's,
the pool's and the memory monitor's into metric families at scrape time, through a custom
collector, next to prometheus-client's own ``process_*`` collector. Counters are counters
(``*_total``), latencies are histograms, and the content type is the library's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .metrics import BUCKETS

if TYPE_CHECKING:
    from .state import AppState

__all__ = ["CONTENT_TYPE", "render"]

log = logging.getLogger("edgestore.web")

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The one content type of ``/metrics`` (prometheus-client's)."""

_LEVELS = {"normal": 0, "warning": 1, "critical": 2, "emergency": 3}
_REGISTRIES: dict[int, CollectorRegistry] = {}


def render(state: AppState) -> bytes:
    """The exposition of every edgestore metric and the process metrics of this process."""
    registry = _REGISTRIES.get(id(state))
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ProcessCollector(registry=None))
        registry.register(_EdgestoreCollector(state))
        _REGISTRIES[id(state)] = registry
    return generate_latest(registry)


def forget(state: AppState) -> None:
    """Drop the registry of an app that shut down."""
    _REGISTRIES.pop(id(state), None)


def _num(d: Mapping[str, Any], key: str) -> float:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


class _EdgestoreCollector(Collector):
    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._http()
        yield from self._cache()
        yield from self._pool()
        yield from self._memory()

    def _http(self) -> Iterator[Metric]:
        m = self.state.metrics
        requests = CounterMetricFamily(
            "edgestore_http_requests",
            "HTTP requests by method, route template and status (unmatched: no route).",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(m.requests.items()):
            requests.add_metric([method, route, str(status)], n)
        yield requests
        latency = HistogramMetricFamily(
            "edgestore_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), hist in sorted(m.latency.items()):
            buckets: list[tuple[str, float]] = []
            cumulative = 0
            for bound, n in zip(BUCKETS, hist.counts, strict=False):
                cumulative += n
                buckets.append((_float_label(bound), cumulative))
            buckets.append(("+Inf", hist.count))
            latency.add_metric([method, route], buckets, hist.total)
        yield latency
        yield CounterMetricFamily(
            "edgestore_websockets_opened", "WebSockets accepted.", value=m.websockets_opened
        )
        yield CounterMetricFamily(
            "edgestore_websockets_closed", "WebSockets ended.", value=m.websockets_closed
        )

    def _cache(self) -> Iterator[Metric]:
        store = self.state.store_or_none
        try:
            raw = store.cache_stats() if store is not None else {}
        except Exception:  # a figure missing from a scrape beats a failed scrape
            log.debug("cache figures unavailable", exc_info=True)
            raw = {}
        lru = raw.get("cache", {}) if isinstance(raw.get("cache"), Mapping) else {}
        query = raw.get("query", {}) if isinstance(raw.get("query"), Mapping) else {}
        # cache="query": lookups of read results (any tier); cache="lru": lookups in the
        # byte-capped store that the key/value API and the query cache's stored tier share.
        hits = CounterMetricFamily(
            "edgestore_cache_hits", "Cache lookups that found a value.", labels=["cache"]
        )
        misses = CounterMetricFamily(
            "edgestore_cache_misses", "Cache lookups that found nothing.", labels=["cache"]
        )
        for label, figures in (("query", query), ("lru", lru)):
            hits.add_metric([label], _num(figures, "hits"))
            misses.add_metric([label], _num(figures, "misses"))
        yield hits
        yield misses
        yield CounterMetricFamily(
            "edgestore_cache_evictions",
            "Entries evicted to stay under the cap.",
            value=_num(lru, "evictions"),
        )
        yield GaugeMetricFamily(
            "edgestore_cache_bytes", "Bytes charged to the cache.", value=_num(raw, "bytes")
        )
        yield GaugeMetricFamily(
            "edgestore_cache_max_bytes",
            "The cache cap now (memory pressure lowers it).",
            value=_num(raw, "max_bytes"),
        )
        yield GaugeMetricFamily(
            "edgestore_cache_entries", "Entries in the cache.", value=_num(raw, "entries")
        )
        yield CounterMetricFamily(
            "edgestore_hot_cache_hits",
            "Table reads answered from encoded responses.",
            value=self.state.hot.hits,
        )
        yield GaugeMetricFamily(
            "edgestore_hot_cache_bytes",
            "Bytes of encoded table-read responses kept for hot keys.",
            value=self.state.hot.bytes,
        )

    def _pool(self) -> Iterator[Metric]:
        store = self.state.store_or_none
        try:
            stats = store.pool.stats() if store is not None else None
        except Exception:
            log.debug("pool figures unavailable", exc_info=True)
            stats = None
        if stats is None:
            return
        for name, help_text in (
            ("connections_open", "Open SQLite connections."),
            ("readers_busy", "Reader connections running a statement."),
            ("max_connections", "Most SQLite connections the pool opens."),
            ("writes_pending", "Writes queued for the writer."),
        ):
            yield GaugeMetricFamily(
                f"edgestore_pool_{name}", help_text, value=getattr(stats, name, 0)
            )
        for name, help_text in (
            ("waits", "Times a request waited for a reader."),
            ("timeouts", "Waits for a connection that timed out."),
            ("group_commits", "Group commits (transactions holding several writes)."),
            ("grouped_writes", "Writes acknowledged through group commits."),
            ("opens", "SQLite connections opened."),
            ("idle_closes", "SQLite connections closed after idle_timeout."),
        ):
            yield CounterMetricFamily(
                f"edgestore_pool_{name}", help_text, value=getattr(stats, name, 0)
            )

    def _memory(self) -> Iterator[Metric]:
        memory = self.state.memory
        if memory is None:
            return
        snap = memory.snapshot()
        yield GaugeMetricFamily(
            "edgestore_memory_rss_bytes",
            "Resident memory of the whole server (every process of it).",
            value=_num(snap, "rss_bytes"),
        )
        yield GaugeMetricFamily(
            "edgestore_memory_budget_bytes",
            "Memory budget the pressure levels refer to.",
            value=_num(snap, "budget_bytes"),
        )
        yield GaugeMetricFamily(
            "edgestore_memory_pressure_level",
            "Memory pressure: 0 normal, 1 warning, 2 critical, 3 emergency.",
            value=_LEVELS.get(str(snap.get("level")), 0),
        )
        breakdown = snap.get("breakdown") or {}
        parts = GaugeMetricFamily(
            "edgestore_memory_component_bytes",
            "This process's resident memory by component (see /api/v1/memory).",
            labels=["component"],
        )
        for name, value in sorted((breakdown.get("components") or {}).items()):
            parts.add_metric([name], value)
        yield parts
        yield GaugeMetricFamily(
            "edgestore_memory_processes",
            "Processes of the server counted in the budget.",
            value=1 + len(breakdown.get("other_processes") or {}),
        )


def _float_label(bound: float) -> str:
    return repr(float(bound))
