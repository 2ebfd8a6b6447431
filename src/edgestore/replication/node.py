"""Opening a node: a Store composed with its replication role, chosen from Settings.

* ``replica_of`` set: a replica node (:mod:`.replica_store`): reads from a local ``libsql``
  embedded replica, writes forwarded to the primary;
* ``serve_replicas`` and ``settings.replication``: a primary (:class:`.primary.ReplicationPrimary`):
  no automatic checkpoints, the WAL outlives connections, and the idle checkpoint becomes a
  generation change, so libSQL replicas can follow it;
* otherwise a plain Store.

``edgestore.open`` opens plain stores and replica nodes; a served node (``create_app``, the
CLI) asks for ``serve_replicas=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Settings
from ..storage.store import Store, resolve_settings
from ..storage.store import open as open_plain
from .primary import ReplicationPrimary

__all__ = ["open_node"]


async def open_node(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    serve_replicas: bool = False,
    **overrides: Any,
) -> Store:
    """Open the database at ``path`` (same arguments as ``edgestore.open``) with its role."""
    settings = resolve_settings(path, settings, overrides)
    if settings.replica_of:
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        # Imported here: only replica nodes need libsql (the follower checks the extra).
        from .replica_store import open_replica

        return await open_replica(settings)
    store = await open_plain(settings=settings)
    if serve_replicas and settings.replication:
        try:
            await ReplicationPrimary.attach(store)
        except BaseException:
            await store.close()
            raise
    return store
