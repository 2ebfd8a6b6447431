"""Query-cache admission under random-key traffic (cache/doorkeeper.py): once most reads are of
new keys, a key's first read skips the cache and its second fills it; repeated keys are cached
from their first read; while the cache does not pay for its lookups most reads bypass it, until
a working set forms; and whatever the mode, no read is stale after an acknowledged write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import edgestore
from edgestore.cache.doorkeeper import BYPASS_AFTER, BYPASS_SAMPLE, WINDOW, Doorkeeper
from edgestore.cache.store_cache import StoreCache
from edgestore.storage import Store

SQL = "SELECT id, v FROM t WHERE id = ?"
ROWS = (BYPASS_AFTER + 2) * WINDOW


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await edgestore.open(tmp_path / "door.db", schemas_dir=None, idle_timeout=0)
    await st.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    await st.batch([("INSERT INTO t VALUES (?, ?)", [i, f"v{i}"]) for i in range(1, ROWS + 1)])
    yield st
    await st.close()


def test_doorkeeper_turns_strict_only_when_most_keys_are_new() -> None:
    hits = [0]

    def hit_count() -> int:
        hits[0] += 1  # every read a hit as far as bypassing goes: only strictness is tested
        return hits[0] * WINDOW

    door = Doorkeeper(hit_count)
    # A small working set that repeats: every key admitted from its first sighting.
    assert all(door.admit(SQL, [i % 8], None, True) for i in range(4 * WINDOW))
    assert not door.strict
    # New keys only: after a window of them, a first sighting is turned away, a second is not.
    for i in range(2 * WINDOW):
        door.admit(SQL, [WINDOW + i], None, True)
    assert door.strict
    assert not door.bypass
    assert door.admit(SQL, ["fresh"], None) is False
    assert door.admit(SQL, ["fresh"], None) is True
    assert door.turned_away > 0


def test_doorkeeper_bypasses_the_cache_while_it_does_not_pay() -> None:
    hits = [0]
    door = Doorkeeper(lambda: hits[0])
    for i in range((BYPASS_AFTER - 1) * WINDOW):  # windows without a hit ...
        door.admit(SQL, [i], None, True)
    assert not door.bypass  # ... not yet enough of them
    for i in range(WINDOW):
        door.admit(SQL, [-i], None, True)
    assert door.bypass
    # Bypassing: one read in BYPASS_SAMPLE still goes through the cache, the rest skip it
    # before any hashing (even a key seen before).
    answers = [door.admit(SQL, [1], None) for _ in range(4 * BYPASS_SAMPLE)]
    assert answers.count(True) == 4
    assert door.bypassed == 4 * (BYPASS_SAMPLE - 1)
    # Hits again (a working set formed): the next window (of sampled reads) ends the bypass.
    hits[0] = 10 * WINDOW
    for i in range(WINDOW * BYPASS_SAMPLE):
        door.admit(SQL, [i % 4], None)
    assert not door.bypass


async def _mix(store: Store, new: range, hot: int) -> None:
    """Two new keys, then a hot one (a hit), and again: mostly new keys (strict), and the
    cache still pays (a third of the reads hit: no bypass)."""
    for n in new:
        await store.query(SQL, [n])
        if n % 2:
            await store.query(SQL, [hot])


async def test_random_keys_are_cached_from_their_second_read(store: Store) -> None:
    await _mix(store, range(2, 2 * WINDOW + 2), hot=1)
    door = StoreCache.of(store).query.doorkeeper
    assert door.strict
    assert not door.bypass
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
    await _mix(store, range(2, 2 * WINDOW + 2), hot=1)
    assert StoreCache.of(store).query.doorkeeper.strict
    key = ROWS - 1
    for _ in range(3):  # turned away, filled, served from the cache
        await store.query(SQL, [key])
    await store.execute("UPDATE t SET v = 'new' WHERE id = ?", [key])
    assert (await store.query(SQL, [key])).values == [(key, "new")]


async def test_distinct_keys_bypass_the_cache_and_hot_keys_win_it_back(store: Store) -> None:
    door = StoreCache.of(store).query.doorkeeper
    for i in range(1, (BYPASS_AFTER + 1) * WINDOW + 1):  # no read repeats: the cache cannot pay
        assert (await store.query(SQL, [i])).values == [(i, f"v{i}")]
    assert door.bypass
    before = door.bypassed
    for i in range(1, BYPASS_SAMPLE + 1):
        await store.query(SQL, [i])
    assert door.bypassed == before + BYPASS_SAMPLE - 1
    # The operator sees it in the typed figures (and so in /api/v1/cache/stats).
    figures = store.cache_stats().query
    assert figures.bypassing is True
    assert figures.bypassed == door.bypassed
    assert figures.turned_away == door.turned_away > 0
    assert figures.misses >= figures.bypassed + figures.turned_away
    # A few hot keys: the sampled reads see them hit, the bypass ends, they are served cached.
    cached = 0
    for n in range(12 * WINDOW * BYPASS_SAMPLE // 4):
        cached += (await store.query(SQL, [1 + n % 4])).cached
        if not door.bypass and cached > WINDOW:
            break
    assert not door.bypass
    assert (await store.query(SQL, [2])).cached


async def test_no_stale_read_after_a_write_while_bypassing(store: Store) -> None:
    key = 3
    for _ in range(3):
        await store.query(SQL, [key])  # cached before the bypass starts
    for i in range(10, (BYPASS_AFTER + 1) * WINDOW + 10):
        await store.query(SQL, [i])
    door = StoreCache.of(store).query.doorkeeper
    assert door.bypass
    await store.execute("UPDATE t SET v = 'new' WHERE id = ?", [key])
    # Bypassed reads go to SQLite, sampled ones check the entry's stamp: none is stale.
    for _ in range(2 * BYPASS_SAMPLE):
        assert (await store.query(SQL, [key])).values == [(key, "new")]


async def test_a_full_cache_fills_a_sample_of_misses_and_says_so(tmp_path: Path) -> None:
    st = await edgestore.open(
        tmp_path / "full.db", schemas_dir=None, idle_timeout=0, cache_max_bytes=64 * 1024
    )
    try:
        await st.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        await st.batch([("INSERT INTO t VALUES (?, ?)", [i, "x" * 200]) for i in range(1, 3001)])
        for i in range(1, 3001):  # twice each: a first sighting may be turned away
            for _ in range(2):
                assert (await st.query(SQL, [i])).values == [(i, "x" * 200)]
        figures = st.cache_stats()
        assert figures is not None
        query = figures.query
        assert figures.bytes <= figures.max_bytes
        # Most misses at the cap were not stored, and the figures say how many.
        assert query.fills_skipped > query.stores
    finally:
        await st.close()
