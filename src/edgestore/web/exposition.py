"""``/metrics`` in the Prometheus text format, written by prometheus-client itself.

Requests are counted by ``edgestore.web.metrics.Metrics`` (plain dict additions on the hot
path, measured by bench/bench_metrics.py); this module only turns those figures, the cache's,
the pool's and the memory monitor's into metric families at scrape time, through a custom
collector, next to prometheus-client's own ``process_*`` collector. Counters are counters
(``*_total``), latencies are histograms, and the content type is the library's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .figures import cache_stats, pool_stats
from .metrics import BUCKETS

if TYPE_CHECKING:
    from .state import AppState

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The one content type of ``/metrics`` (prometheus-client's)."""

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
        stats = cache_stats(self.state)
        # cache="query": lookups of read results (any tier); cache="lru": lookups in the
        # byte-capped store that the key/value API and the query cache's stored tier share.
        hits = CounterMetricFamily(
            "edgestore_cache_hits", "Cache lookups that found a value.", labels=["cache"]
        )
        misses = CounterMetricFamily(
            "edgestore_cache_misses", "Cache lookups that found nothing.", labels=["cache"]
        )
        if stats is not None:
            hits.add_metric(["query"], stats.query.hits)
            misses.add_metric(["query"], stats.query.misses)
            hits.add_metric(["lru"], stats.cache.hits)
            misses.add_metric(["lru"], stats.cache.misses)
        yield hits
        yield misses
        # Why query-cache misses did not use the cache (cache/doorkeeper.py): the first
        # sighting of a key while most keys are new, a bypass while the cache does not pay,
        # or a full cache that stores only a sample of its misses.
        skipped = CounterMetricFamily(
            "edgestore_cache_skipped",
            "Query-cache misses that skipped the cache, by reason.",
            labels=["reason"],
        )
        if stats is not None:
            skipped.add_metric(["first_sighting"], stats.query.turned_away)
            skipped.add_metric(["bypass"], stats.query.bypassed)
            skipped.add_metric(["full"], stats.query.fills_skipped)
        yield skipped
        yield GaugeMetricFamily(
            "edgestore_cache_bypassing",
            "1 while most reads skip the query cache because it does not pay for its lookups.",
            value=int(stats.query.bypassing) if stats is not None else 0,
        )
        yield CounterMetricFamily(
            "edgestore_cache_evictions",
            "Entries evicted to stay under the cap.",
            value=stats.cache.evictions if stats is not None else 0,
        )
        yield GaugeMetricFamily(
            "edgestore_cache_bytes",
            "Bytes charged to the cache.",
            value=stats.bytes if stats is not None else 0,
        )
        yield GaugeMetricFamily(
            "edgestore_cache_max_bytes",
            "The cache cap now (memory pressure lowers it).",
            value=stats.max_bytes if stats is not None else 0,
        )
        yield GaugeMetricFamily(
            "edgestore_cache_entries",
            "Entries in the cache.",
            value=stats.entries if stats is not None else 0,
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
        stats = pool_stats(self.state)
        if stats is None:
            return
        for name, help_text, value in (
            ("connections_open", "Open SQLite connections.", stats.connections_open),
            ("readers_busy", "Reader connections running a statement.", stats.readers_busy),
            ("max_connections", "Most SQLite connections the pool opens.", stats.max_connections),
            ("writes_pending", "Writes queued for the writer.", stats.writes_pending),
        ):
            yield GaugeMetricFamily(f"edgestore_pool_{name}", help_text, value=value)
        for name, help_text, value in (
            ("waits", "Times a request waited for a reader.", stats.waits),
            ("timeouts", "Waits for a connection that timed out.", stats.timeouts),
            (
                "group_commits",
                "Group commits (transactions holding several writes).",
                stats.group_commits,
            ),
            (
                "grouped_writes",
                "Writes acknowledged through group commits.",
                stats.grouped_writes,
            ),
            ("opens", "SQLite connections opened.", stats.opens),
            ("idle_closes", "SQLite connections closed after idle_timeout.", stats.idle_closes),
        ):
            yield CounterMetricFamily(f"edgestore_pool_{name}", help_text, value=value)

    def _memory(self) -> Iterator[Metric]:
        memory = self.state.memory
        if memory is None:
            return
        snap = memory.snapshot()
        yield GaugeMetricFamily(
            "edgestore_memory_rss_bytes",
            "Resident memory of the whole server (every process of it).",
            value=snap.rss_bytes,
        )
        yield GaugeMetricFamily(
            "edgestore_memory_budget_bytes",
            "Memory budget the pressure levels refer to.",
            value=snap.budget_bytes,
        )
        yield GaugeMetricFamily(
            "edgestore_memory_pressure_level",
            "Memory pressure: 0 normal, 1 warning, 2 critical, 3 emergency.",
            value=snap.level_value,
        )
        breakdown = snap.breakdown
        parts = GaugeMetricFamily(
            "edgestore_memory_component_bytes",
            "This process's resident memory by component (see /api/v1/memory).",
            labels=["component"],
        )
        if breakdown is not None:
            components = msgspec.structs.asdict(breakdown.components)
            for name, value in sorted(components.items()):
                parts.add_metric([name], value)
        yield parts
        yield GaugeMetricFamily(
            "edgestore_memory_processes",
            "Processes of the server counted in the budget.",
            value=1 + (len(breakdown.other_processes) if breakdown is not None else 0),
        )


def _float_label(bound: float) -> str:
    return repr(float(bound))
