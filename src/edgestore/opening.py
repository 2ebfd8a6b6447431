"""``edgestore.open()`` / ``edgestore.connect()``: a store composed with its cache.

Storage knows nothing of the cache nor of replication: this module, above both, opens the node
the settings ask for through :func:`edgestore.replication.open_node` (a plain store, a primary
with ``serve_replicas``, or a replica node's store when ``replica_of`` is set) and attaches a
:class:`~edgestore.cache.store_cache.StoreCache` as its read cache before it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cache.store_cache import StoreCache
from .config import Settings
from .replication.node import open_node
from .storage.factory import resolve_settings
from .storage.store import Store
from .storage.sync import SyncStore, connect_with

__all__ = ["connect", "open", "open_with_settings"]


def _attach_cache(store: Store) -> None:
    StoreCache.attach(store)


async def open_with_settings(settings: Settings, *, serve_replicas: bool = False) -> Store:
    """Open the node ``settings`` describe, with its cache (``serve_replicas``: a primary
    libSQL replicas can follow, while ``settings.replication`` is on)."""
    return await open_node(settings, prepare=_attach_cache, serve_replicas=serve_replicas)


async def open(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    serve_replicas: bool = False,
    **overrides: Any,
) -> Store:
    """Open (creating if needed, in WAL mode) the database at ``path`` and apply schemas.

    ``settings`` defaults to ``Settings.load()`` (environment and config file); keyword
    ``overrides`` change individual settings (``idle_timeout=5``). ``replica_of`` opens a
    replica node; ``serve_replicas=True`` a primary (what ``edgestore serve`` does).
    """
    return await open_with_settings(
        resolve_settings(path, settings, overrides), serve_replicas=serve_replicas
    )


def connect(
    path: str | Path | None = None, *, settings: Settings | None = None, **overrides: Any
) -> SyncStore:
    """Open a database for blocking use; same arguments as :func:`open`."""
    return connect_with(open(path, settings=settings, **overrides))
