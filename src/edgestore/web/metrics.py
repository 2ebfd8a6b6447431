"""Per-route request counts and latency histograms, plus the structured access log.

``edgestore.web.middleware`` records every routed HTTP request here; it costs a dict lookup
and a few additions, so it stays on in production. ``Metrics.render`` gives Prometheus text.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from typing import Any

from litestar.types import Scope

__all__ = ["BUCKETS", "Metrics", "log_access"]

access_log = logging.getLogger("edgestore.access")

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

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get((method, route))
        if hist is None:
            hist = self.latency[(method, route)] = _Histogram()
        hist.observe(seconds)
        self.requests_total += 1

    def render(self) -> list[str]:
        """Prometheus text lines for the request metrics."""
        lines = [
            "# HELP edgestore_http_requests_total HTTP requests by method, route and status.",
            "# TYPE edgestore_http_requests_total counter",
        ]
        for (method, route, status), n in sorted(self.requests.items()):
            lines.append(
                f'edgestore_http_requests_total{{method="{method}",route="{_esc(route)}",'
                f'status="{status}"}} {n}'
            )
        lines += [
            "# HELP edgestore_http_request_duration_seconds HTTP request latency by route.",
            "# TYPE edgestore_http_request_duration_seconds histogram",
        ]
        for (method, route), hist in sorted(self.latency.items()):
            labels = f'method="{method}",route="{_esc(route)}"'
            cumulative = 0
            for bound, n in zip(BUCKETS, hist.counts, strict=False):
                cumulative += n
                lines.append(
                    f'edgestore_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                    f"{cumulative}"
                )
            lines.append(
                f'edgestore_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {hist.count}'
            )
            lines.append(f"edgestore_http_request_duration_seconds_sum{{{labels}}} {hist.total}")
            lines.append(f"edgestore_http_request_duration_seconds_count{{{labels}}} {hist.count}")
        return lines


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


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
