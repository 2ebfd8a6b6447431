"""The slowest statements and per-table reads and writes, for the dashboard, in bounded memory.

SQLite reports every statement it finishes with its run time (``sqlite3_trace_v2``, through
apsw's ``Connection.set_profile``) on each pooled connection (``Store.add_connection_hook``).
Statements are grouped by their normalised text (literals become ``?``, whitespace collapsed):
count, total time and the 95th percentile of the last SAMPLES runs. The tables a statement
reads and writes come from the store's statement analysis (SQLite's authorizer), looked up
once per SQL text; per-table counts add up the groups' counts when asked. At most
MAX_STATEMENTS groups are kept (the least run is dropped).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import Any

__all__ = ["QueryStats", "normalise"]

MAX_STATEMENTS = 200
MAX_TEXTS = 2048
SAMPLES = 64

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_SPACE = re.compile(r"\s+")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")


def normalise(sql: str) -> str:
    """``sql`` with literals as ``?`` and whitespace collapsed (one line)."""
    text = _STRING.sub("?", sql)
    text = _NUMBER.sub("?", text)
    text = _SPACE.sub(" ", text).strip()
    return _LIST.sub("(?, ...)", text)


class _Group:
    __slots__ = ("count", "reads", "recent", "total_ns", "writes")

    def __init__(self, reads: frozenset[str], writes: frozenset[str]) -> None:
        self.count = 0
        self.total_ns = 0
        self.recent: deque[int] = deque(maxlen=SAMPLES)
        self.reads = reads
        self.writes = writes


class QueryStats:
    """Collects statement timings from the store's connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_text: dict[str, _Group] = {}
        self._groups: dict[str, _Group] = {}
        self._store: Any = None

    def attach(self, store: Any) -> None:
        """Time every statement on ``store``'s connections from now on."""
        self._store = store
        store.add_connection_hook(self._hook)

    def _hook(self, db: Any, role: str) -> None:
        db.set_profile(self._on_statement)

    def _deps(self, sql: str) -> tuple[frozenset[str], frozenset[str]]:
        analysis = self._store.cached_analysis(sql) if self._store is not None else None
        deps = getattr(analysis, "deps", None)
        if deps is None:
            return frozenset(), frozenset()
        return frozenset(deps.reads), frozenset(deps.writes)

    def _on_statement(self, sql: str, nanoseconds: int) -> None:
        # Runs after every statement, with the GIL held: no lock, nothing but a lookup and
        # three updates on the common path (bench/bench_metrics.py measures what it costs).
        group = self._by_text.get(sql)
        if group is None:
            group = self._new_group(sql)
        group.count += 1
        group.total_ns += nanoseconds
        group.recent.append(nanoseconds)

    def _new_group(self, sql: str) -> _Group:
        reads, writes = self._deps(sql)
        key = normalise(sql)
        with self._lock:
            group = self._groups.get(key)
            if group is None:
                if len(self._groups) >= MAX_STATEMENTS:
                    least = min(self._groups, key=lambda k: self._groups[k].count)
                    del self._groups[least]
                    self._by_text.clear()  # texts may point at the dropped group
                group = self._groups[key] = _Group(reads, writes)
            if len(self._by_text) >= MAX_TEXTS:
                self._by_text.clear()
            self._by_text[sql] = group
        return group

    def slowest(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` statements with the most total time."""
        with self._lock:
            items = [(k, g.count, g.total_ns, sorted(g.recent)) for k, g in self._groups.items()]
        items.sort(key=lambda it: it[2], reverse=True)
        out = []
        for sql, count, total, recent in items[:n]:
            p95 = recent[min(len(recent) - 1, int(0.95 * len(recent)))] if recent else 0
            out.append(
                {
                    "sql": sql,
                    "count": count,
                    "total_ms": round(total / 1e6, 3),
                    "p95_ms": round(p95 / 1e6, 3),
                }
            )
        return out

    def tables(self) -> list[dict[str, Any]]:
        """Statements that read and wrote each table (most active first)."""
        reads: dict[str, int] = {}
        writes: dict[str, int] = {}
        with self._lock:
            groups = list(self._groups.values())
        for g in groups:
            for t in g.reads:
                reads[t] = reads.get(t, 0) + g.count
            for t in g.writes:
                writes[t] = writes.get(t, 0) + g.count
        counts = [(t, reads.get(t, 0), writes.get(t, 0)) for t in set(reads) | set(writes)]
        counts.sort(key=lambda c: c[1] + c[2], reverse=True)
        return [{"table": t, "reads": r, "writes": w} for t, r, w in counts]
