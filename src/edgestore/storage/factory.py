"""Opening a plain store: settings from arguments, then ``Store.start``.

``edgestore.open`` (``edgestore/opening.py``) composes the store with its cache and chooses a
replica node's store when ``replica_of`` is set; :func:`open` here opens a store with neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from .store import Store

__all__ = ["StorePreparer", "open", "open_store", "resolve_settings", "start_store"]


def resolve_settings(
    path: str | Path | None, settings: Settings | None, overrides: dict[str, Any]
) -> Settings:
    """``settings`` (default ``Settings.load()``) with ``path`` and keyword ``overrides``."""
    if path is not None:
        overrides["db_path"] = Path(path)
    fields = Settings.__dataclass_fields__
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}")
    if settings is None:
        settings = Settings.load(**overrides)
    given = {k: v for k, v in overrides.items() if v is not None}
    # Settings.load skips None (unset CLI options); here None is meant, for the optional
    # settings (schemas_dir=None: apply no schema).
    given.update(
        {k: None for k, v in overrides.items() if v is None and "None" in str(fields[k].type)}
    )
    settings = settings.replace(**given)
    settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    return settings


StorePreparer = Callable[[Store], None]
"""Called on a new store before it starts (``edgestore.open`` attaches its cache so)."""


async def open_store(settings: Settings, prepare: StorePreparer | None = None) -> Store:
    """Open and start a plain store (no cache unless ``prepare`` attaches one)."""
    if settings.replica_of:
        # Storage does not know replication: opening a replica's file as a plain store would
        # let another driver write libsql's WAL. The layer above composes replica nodes.
        raise ConfigError("a replica node (replica_of) opens through edgestore.open()")
    store = Store(settings, asyncio.get_running_loop())
    await start_store(store, prepare)
    return store


async def start_store(store: Store, prepare: StorePreparer | None) -> None:
    """``prepare(store)``, then start it; a store that fails to start is closed (its pool and
    threads do not outlive the error)."""
    if prepare is not None:
        prepare(store)
    try:
        await store.start()
    except BaseException:
        await store.close()
        raise


async def open(
    path: str | Path | None = None,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> Store:
    """Open (creating if needed, in WAL mode) the database at ``path`` and apply schemas.

    ``settings`` defaults to ``Settings.load()`` (environment and config file); keyword
    ``overrides`` change individual settings (``idle_timeout=5``). The store has no cache and
    no replication: ``edgestore.open`` composes those.
    """
    return await open_store(resolve_settings(path, settings, overrides))
