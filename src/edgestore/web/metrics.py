"""Per-route request counts and latency histograms, plus the structured access log.

``edgestore.web.middleware`` records every routed HTTP request here; it costs a dict lookup
and a few additions, so it stays on in production. Requests that match no route are counted
by the app's exception handler (``count_unrouted``). ``edgestore.web.exposition`` turns the
figures into Prometheus text at scrape time.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from typing import Any

from litestar.types import Scope

__all__ = ["BUCKETS", "UNMATCHED", "Metrics", "log_access"]

access_log = logging.getLogger("edgestore.access")

UNMATCHED = "unmatched"
"""The route label of requests that matched no route."""

BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # last slot: above the largest bucket
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.count += 1
        self.total += seconds


class Metrics:
    """Counters keyed by (method, route template, status) and a histogram per route."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.requests_total = 0
        self.websockets_opened = 0
        self.websockets_closed = 0
        self.access_log = False

    def activity(self) -> int:
        """A number that moves whenever the server does something (the memory monitor
        gives memory back once it has stood still for a while)."""
        return self.requests_total + self.websockets_opened + self.websockets_closed

    def count_unrouted(self, method: str, status: int) -> None:
        """A request no route took (404 unknown path, 405 method not allowed)."""
        key = (method, UNMATCHED, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.requests_total += 1

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get((method, route))
        if hist is None:
            hist = self.latency[(method, route)] = _Histogram()
        hist.observe(seconds)
        self.requests_total += 1


def log_access(scope: Scope, method: str, status: int, elapsed: float) -> None:
    client = scope.get("client")
    record: dict[str, Any] = {
        "ts": round(time.time(), 3),
        "method": method,
        "path": scope.get("path", ""),
        "route": scope.get("path_template"),
        "status": status,
        "ms": round(elapsed * 1000, 3),
        "client": client[0] if client else None,
    }
    access_log.info(json.dumps(record, separators=(",", ":")))
