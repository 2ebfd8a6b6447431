"""``edgestore.open()`` / ``edgestore.connect()``: a store composed with its cache.

Storage knows nothing of the cache: this module, above both, opens the store the settings ask
for (a plain one, or a replica node's when ``replica_of`` is set) and attaches a
:class:`~edgestore.cache.store_cache.StoreCache` as its read cache before it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cache.store_cache import StoreCache
from .config import Settings
from .storage.factory import open_store, resolve_settings
from .storage.store import Store
from .storage.sync import SyncStore, connect_with

__all__ = ["connect", "open", "open_with_settings"]


def _attach_cache(store: Store) -> None:
    StoreCache.attach(store)


async def open_with_settings(settings: Settings) -> Store:
    """Open the store ``settings`` describe, with its cache."""
    if settings.replica_of:
        # A replica node: reads from a libsql embedded replica of the primary, writes are
        # forwarded to it (imported here: only replica nodes need libsql).
        from .storage.replication.replica_store import open_replica

        return await open_replica(settings, _attach_cache)
    return await open_store(settings, _attach_cache)


async def open(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> Store:
    """Open (creating if needed, in WAL mode) the database at ``path`` and apply schemas.

    ``settings`` defaults to ``Settings.load()`` (environment and config file); keyword
    ``overrides`` change individual settings (``idle_timeout=5``).
    """
    return await open_with_settings(resolve_settings(path, settings, overrides))


def connect(
    path: str | Path | None = None, *, settings: Settings | None = None, **overrides: Any
) -> SyncStore:
    """Open a database for blocking use; same arguments as :func:`open`."""
    return connect_with(open(path, settings=settings, **overrides))
