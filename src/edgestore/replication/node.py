"""Opening a node: a Store composed with its replication role, chosen from Settings.

* ``replica_of`` set: a replica node (:mod:`.replica_store`): reads from a local ``libsql``
  embedded replica, writes forwarded to the primary;
* ``serve_replicas`` and ``settings.replication``: a primary
  (:class:`.primary.ReplicationPrimary`): no automatic checkpoints, the WAL outlives
  connections, and a checkpoint becomes a generation change, so libSQL replicas can follow it;
* otherwise a plain Store.

``edgestore.open`` (``edgestore/opening.py``) calls this with the cache to attach; a served
node (``create_app``, the CLI) asks for ``serve_replicas=True``.
"""

from __future__ import annotations

from ..config import Settings
from ..storage.factory import StorePreparer, open_store
from ..storage.store import Store
from .primary import ReplicationPrimary

__all__ = ["open_node"]


async def open_node(
    settings: Settings, *, prepare: StorePreparer | None = None, serve_replicas: bool = False
) -> Store:
    """Open the node ``settings`` describe; ``prepare(store)`` runs before the store starts."""
    if settings.replica_of:
        # Imported here: only replica nodes need libsql (the follower checks the extra).
        from .replica_store import open_replica

        return await open_replica(settings, prepare)
    store = await open_store(settings, prepare)
    if serve_replicas and settings.replication:
        try:
            await ReplicationPrimary.attach(store)
        except BaseException:
            await store.close()
            raise
    return store
