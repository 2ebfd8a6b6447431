"""Memory pressure control: RSS sampling, levels with hysteresis, registered actions."""

from __future__ import annotations

from .accounting import Breakdown, Components, ConnectionCache
from .monitor import DEFAULT_BUDGET, Level, MemoryMonitor, MemorySnapshot
from .sampler import cgroup_limit, rss_bytes
from .streams import BufferHolder, StreamBuffers

__all__ = [
    "DEFAULT_BUDGET",
    "Breakdown",
    "BufferHolder",
    "Components",
    "ConnectionCache",
    "Level",
    "MemoryMonitor",
    "MemorySnapshot",
    "StreamBuffers",
    "cgroup_limit",
    "rss_bytes",
]
