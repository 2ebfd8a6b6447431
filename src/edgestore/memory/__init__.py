"""Memory pressure control: RSS sampling, levels with hysteresis, registered actions."""

from __future__ import annotations

from .monitor import DEFAULT_BUDGET, Level, MemoryMonitor
from .sampler import cgroup_limit, rss_bytes

__all__ = ["DEFAULT_BUDGET", "Level", "MemoryMonitor", "cgroup_limit", "rss_bytes"]
