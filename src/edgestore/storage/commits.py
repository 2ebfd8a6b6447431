"""What a commit through the store announces: table versions moved, and the commit listeners.

The store's writer (group commit), transactions, sessions and schema application all end in
:meth:`CommitPublisher.publish`; the query cache follows the table versions, replication and
the web layer subscribe with ``Store.add_commit_listener``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .execution import Outcome
from .versions import TableVersions

__all__ = ["CommitListener", "CommitPublisher"]

log = logging.getLogger(__name__)

CommitListener = Callable[[frozenset[str]], None]


class CommitPublisher:
    """Moves the table versions after each commit and calls the listeners."""

    def __init__(self, versions: TableVersions, schema_moved: Callable[[], None]) -> None:
        self.versions = versions
        self._schema_moved = schema_moved  # drops the cached analyses
        self._listeners: list[CommitListener] = []

    def publish(self, outcome: Outcome) -> None:
        if outcome.external or outcome.schema_change:
            self._schema_moved()
            self.versions.bump_all()
        elif outcome.touches_all and outcome.committed:
            self.versions.bump_all()
        if outcome.written:
            self.versions.bump(outcome.written)
        if outcome.committed:
            written = frozenset(outcome.written)
            for listener in tuple(self._listeners):
                try:
                    listener(written)
                except Exception:
                    log.exception("commit listener failed")

    def add_listener(self, fn: CommitListener) -> Callable[[], None]:
        """Call ``fn(tables_written)`` after each commit; returns the function removing it."""
        self._listeners.append(fn)

        def remove() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)

        return remove
