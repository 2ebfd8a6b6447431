"""Query-cache admission under random-key traffic (cache/doorkeeper.py): once most reads are of
new keys, a key's first read skips the cache and its second fills it; repeated keys are cached
from their first read; and strict or not, no read is stale after an acknowledged write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import edgestore
from edgestore.cache.doorkeeper import WINDOW, Doorkeeper
from edgestore.cache.store_cache import StoreCache
from edgestore.storage import Store

SQL = "SELECT id, v FROM t WHERE id = ?"
ROWS = 3 * WINDOW


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await edgestore.open(tmp_path / "door.db", schemas_dir=None, idle_timeout=0)
    await st.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    await st.batch([("INSERT INTO t VALUES (?, ?)", [i, f"v{i}"]) for i in range(1, ROWS + 1)])
    yield st
    await st.close()


def test_doorkeeper_turns_strict_only_when_most_keys_are_new() -> None:
    door = Doorkeeper()
    # A small working set that repeats: every key admitted from its first sighting.
    assert all(door.admit(("q", i % 8)) for i in range(4 * WINDOW))
    assert not door.strict
    # New keys only: after a window of them, a first sighting is turned away, a second is not.
    for i in range(2 * WINDOW):
        door.admit(("new", i))
    assert door.strict
    assert door.admit(("fresh", 1)) is False
    assert door.admit(("fresh", 1)) is True
    assert door.turned_away > 0


async def test_random_keys_are_cached_from_their_second_read(store: Store) -> None:
    for i in range(1, 2 * WINDOW + 1):  # a window and more of keys never read before
        await store.query(SQL, [i])
    key = ROWS
    before = StoreCache.of(store).stats().first_sightings_uncached
    first = await store.query(SQL, [key])
    assert StoreCache.of(store).stats().first_sightings_uncached == before + 1
    assert first.values == [(key, f"v{key}")]
    assert not first.cached
    second = await store.query(SQL, [key])
    assert not second.cached  # the miss that fills
    third = await store.query(SQL, [key])
    assert third.cached
    assert third.values == [(key, f"v{key}")]


async def test_no_stale_read_after_a_write_while_strict(store: Store) -> None:
    for i in range(1, 2 * WINDOW + 1):
        await store.query(SQL, [i])
    key = ROWS - 1
    for _ in range(3):  # turned away, filled, served from the cache
        await store.query(SQL, [key])
    await store.execute("UPDATE t SET v = 'new' WHERE id = ?", [key])
    assert (await store.query(SQL, [key])).values == [(key, "new")]
