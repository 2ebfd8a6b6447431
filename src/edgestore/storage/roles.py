"""The replication role a Store can be given: the one interface storage knows of replication.

Storage never imports the replication package; ``edgestore.replication`` composes a Store with
a role when it opens one (``edgestore.replication.open_node``) and hands it over with
:meth:`~edgestore.storage.Store.set_replication_role`; the hooks the role needs (connection
hook, idle-close handler, checkpoint handler) are the Store's own public methods. The web layer
reads the role back from the store to serve the sync protocol and the position header.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Position", "ReplicationRole"]

Position = tuple[int, int]
"""``(generation, last commit frame)`` of a replicated database; compares in order."""


class ReplicationRole(Protocol):
    """What a Store asks of the replication role it was given."""

    def position(self) -> Position:
        """The replication position this node has (written or pulled)."""
        ...
