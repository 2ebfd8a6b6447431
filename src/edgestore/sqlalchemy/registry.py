"""One shared :class:`Store` per database file, event loop and settings, counted by users.

SQLAlchemy opens a DB-API connection per pooled connection; each shim connection takes a
reference here instead of opening SQLite itself, so all of them share one store, that is one
writer and at most two readers whatever the number of connections. The store closes when the
last shim connection of its key closes (engine ``dispose()``, or the last NullPool checkout).

The sync dialect has no event loop of its own: its stores live on one daemon loop thread
(:func:`sync_loop`), and its connections hand every call to that thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..cache.store_cache import StoreCache
from ..storage import Store
from ..storage.factory import open_store, resolve_settings

__all__ = [
    "StoreKey",
    "acquire",
    "open_stores",
    "release",
    "run_sync",
    "shared_store",
    "sync_loop",
]

T = TypeVar("T")

StoreKey = tuple[int, str, tuple[tuple[str, Any], ...]]


@dataclass
class _Entry:
    loop: asyncio.AbstractEventLoop
    refs: int = 0
    store: Store | None = None
    opening: asyncio.Future[Store] | None = None


_entries: dict[StoreKey, _Entry] = {}
# Stores still closing, by key: a new user waits, so that an old writer and a new one never
# overlap on the same file.
_closing: dict[StoreKey, asyncio.Future[None]] = {}


def _key(loop: asyncio.AbstractEventLoop, path: Path, settings: dict[str, Any]) -> StoreKey:
    return (id(loop), str(path.resolve()), tuple(sorted(settings.items(), key=lambda kv: kv[0])))


async def acquire(path: Path, settings: dict[str, Any]) -> tuple[StoreKey, Store]:
    """The shared store for ``path`` on the running loop (opened on first use), plus its key."""
    loop = asyncio.get_running_loop()
    key = _key(loop, path, settings)
    while (closing := _closing.get(key)) is not None:
        await asyncio.shield(closing)
    entry = _entries.get(key)
    if entry is not None and entry.loop is not loop:
        entry = None  # a dead loop's id was reused: its store cannot be used here
    if entry is None:
        entry = _Entry(loop)
        _entries[key] = entry
    entry.refs += 1
    try:
        if entry.store is not None and not entry.store.closed:
            return key, entry.store
        if entry.opening is None:
            entry.opening = loop.create_future()
            try:
                # A plain store with its query cache, composed as edgestore.open does (a
                # dialect URL names a local file: never a replica node nor a primary).
                store = await open_store(
                    resolve_settings(path, None, dict(settings)), _attach_cache
                )
            except BaseException as exc:
                entry.opening.set_exception(exc)
                entry.opening.exception()  # retrieved: waiters re-raise it themselves
                entry.opening = None
                raise
            entry.store = store
            entry.opening.set_result(store)
            entry.opening = None
            return key, store
        return key, await asyncio.shield(entry.opening)
    except BaseException:
        await release(key)
        raise


async def release(key: StoreKey) -> None:
    """Drop one reference; the last one closes the store."""
    entry = _entries.get(key)
    if entry is None:
        return
    entry.refs -= 1
    if entry.refs > 0:
        return
    store = entry.store
    entry.store = None
    if _entries.get(key) is entry:
        del _entries[key]
    if store is not None:
        done: asyncio.Future[None] = entry.loop.create_future()
        _closing[key] = done
        try:
            await store.close()
        finally:
            del _closing[key]
            done.set_result(None)


def open_stores() -> list[Store]:
    """The stores currently shared (for tests and benchmarks)."""
    return [e.store for e in _entries.values() if e.store is not None]


_sync_lock = threading.Lock()
_sync_loop: asyncio.AbstractEventLoop | None = None


def sync_loop() -> asyncio.AbstractEventLoop:
    """The event loop (on a daemon thread) that runs the stores of the sync dialect."""
    global _sync_loop
    with _sync_lock:
        if _sync_loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="edgestore-sqlalchemy", daemon=True
            )
            thread.start()
            _sync_loop = loop
        return _sync_loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the sync dialect's loop thread and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, sync_loop()).result()


@asynccontextmanager
async def shared_store(url: str) -> AsyncIterator[Store]:
    """The store an ``sqlite+edgestore_async`` engine with this URL uses on the running loop.

    Held open while inside, so that other parts of the same process (edgestore's own HTTP app,
    ``create_app(store=...)``) share the engine's pool instead of opening a second writer.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dialect = parsed.get_dialect()()
    args, settings = dialect.create_connect_args(parsed)
    key, store = await acquire(Path(args[0]), dict(settings))
    try:
        yield store
    finally:
        await release(key)


def _attach_cache(store: Store) -> None:
    StoreCache.attach(store)
