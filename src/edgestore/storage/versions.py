"""Per-table version counters: what the query cache checks to know a result is still fresh.

Every bump takes the next value of one process-wide sequence, so a table's version only ever
grows and a stamp over several tables can be ``(epoch, max of their versions)``: any bump of
any of them raises the maximum. The epoch moves when everything must be considered changed
(a schema change, a write from another process, an explicit invalidate()).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable

__all__ = ["TableVersions"]

log = logging.getLogger(__name__)

Listener = Callable[[frozenset[str] | None], None]


class TableVersions:
    """Version counters per table plus a global epoch. Used from the event loop thread."""

    __slots__ = ("_listeners", "_seq", "_versions", "epoch")

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._seq = 0
        self.epoch = 0
        self._listeners: list[Listener] = []

    def get(self, table: str) -> int:
        """The table's current version (0 if it was never written through this store)."""
        return self._versions.get(table, 0)

    def stamp(self, tables: frozenset[str]) -> Hashable:
        """A value that changes whenever any of ``tables`` or the epoch changes.

        Take it *before* running the read whose result it will tag: a write racing with the
        read then bumps past it and the entry is stale at once.
        """
        get = self._versions.get
        top = 0
        for table in tables:
            v = get(table, 0)
            if v > top:
                top = v
        return (self.epoch, top)

    def bump(self, tables: Iterable[str]) -> None:
        """Mark ``tables`` as changed (after the commit that changed them)."""
        changed = frozenset(tables)
        if not changed:
            return
        self._seq += 1
        for table in changed:
            self._versions[table] = self._seq
        self._notify(changed)

    def bump_all(self) -> None:
        """Everything changed: schema change, external write, explicit invalidation."""
        self.epoch += 1
        self._notify(None)

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(tables)`` on each bump (``None``: everything); returns unsubscribe."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _notify(self, tables: frozenset[str] | None) -> None:
        for callback in tuple(self._listeners):
            try:
                callback(tables)
            except Exception:  # a broken listener must not break the write path
                log.exception("table version listener failed")
