"""Where the memory figures come from: the process RSS and the cgroup memory limit.

Linux only for exact figures (``/proc/self/statm``, cgroup v2 ``memory.max`` or cgroup v1
``memory.limit_in_bytes``); elsewhere RSS falls back to the peak from ``getrusage`` and no
limit is found.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

__all__ = ["cgroup_limit", "rss_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages).
_NO_LIMIT = 1 << 60


def rss_bytes(statm: Path = Path("/proc/self/statm")) -> int:
    """Resident set size of this process, in bytes."""
    try:
        with statm.open("rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def cgroup_limit(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> int | None:
    """The memory limit of this process's cgroup (v2 or v1), or None when unlimited/unknown."""
    v2_path = v1_path = ""
    try:
        for line in proc_cgroup.read_text().splitlines():
            hier, _, rest = line.partition(":")
            controllers, _, group = rest.partition(":")
            if hier == "0" and controllers == "":
                v2_path = group
            elif "memory" in controllers.split(","):
                v1_path = group
    except OSError:
        pass
    # Inside a container the own cgroup is usually mounted as the root, so the root files
    # are tried after the paths named in /proc/self/cgroup.
    candidates: list[Path] = []
    if v2_path:
        candidates.append(root / v2_path.lstrip("/") / "memory.max")
    candidates.append(root / "memory.max")
    if v1_path:
        candidates.append(root / "memory" / v1_path.lstrip("/") / "memory.limit_in_bytes")
    candidates.append(root / "memory" / "memory.limit_in_bytes")
    for path in candidates:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max":
            return None
        try:
            value = int(text)
        except ValueError:
            continue
        return None if value <= 0 or value >= _NO_LIMIT else value
    return None
