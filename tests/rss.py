"""Memory of a server subprocess and its workers, read from /proc (Linux).

``edgestore serve`` runs the app in granian worker processes, children of the process the test
started: the figures are the largest among the process and its descendants.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["peak_rss_mib", "rss_mib"]


def _tree(pid: int) -> list[int]:
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out.extend(_tree(int(child)))
    return out


def _field(pid: int, name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    except OSError:
        pass
    return 0.0


def rss_mib(pid: int) -> float:
    """Largest current RSS (MiB) among ``pid`` and its descendants."""
    return max(_field(p, "VmRSS") for p in _tree(pid))


def peak_rss_mib(pid: int) -> float:
    """Largest peak RSS (VmHWM, MiB) among ``pid`` and its descendants."""
    return max(_field(p, "VmHWM") for p in _tree(pid))
