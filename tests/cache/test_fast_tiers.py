"""The decoded-result tier in front of the query cache, and raw promotion of frequent values."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import edgestore
from edgestore.cache import CompressedLRU
from edgestore.cache.decoded import fast_key
from edgestore.cache.lru import PROMOTE_HITS
from edgestore.cache.store_cache import StoreCache
from edgestore.storage import Store

from .helpers import json_row


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await edgestore.open(tmp_path / "tiers.db", schemas_dir=None, idle_timeout=0)
    await st.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    await st.batch([("INSERT INTO t(id, v) VALUES (?, ?)", [i, f"v{i}"]) for i in range(1, 30)])
    try:
        yield st
    finally:
        await st.close()


SQL = "SELECT id, v FROM t WHERE id <= ? ORDER BY id"


async def test_decoded_hits_are_independent_and_never_stale(store: Store) -> None:
    first = await store.query(SQL, [5])
    assert not first.cached
    first.values.append((0, "caller's own list"))
    # The first hit decodes from the compressed LRU and keeps the result decoded ...
    hit = await store.query(SQL, [5])
    assert hit.cached
    assert StoreCache.of(store).query.stats().decoded_hits == 0
    # ... the next one is served decoded.
    hit = await store.query(SQL, [5])
    assert hit.cached
    assert len(hit.values) == 5
    assert StoreCache.of(store).query.stats().decoded_hits >= 1
    hit.values.clear()  # a caller changing its result does not change the next one
    again = await store.query(SQL, [5])
    assert again.cached
    assert [r[0] for r in again.values] == [1, 2, 3, 4, 5]
    await store.execute("UPDATE t SET v = 'new' WHERE id = 3")
    after = await store.query(SQL, [5])
    assert not after.cached
    assert after.values[2] == (3, "new")
    assert (await store.query(SQL, [5])).values[2] == (3, "new")


async def test_decoded_tier_is_charged_and_cleared(store: Store) -> None:
    for n in range(1, 10):
        await store.query(SQL, [n])  # miss: stored compressed-or-raw in the LRU
        await store.query(SQL, [n])  # first hit: kept decoded too
    lru = StoreCache.of(store).query.lru
    tier = StoreCache.of(store).query.decoded
    assert len(tier) == 9
    assert tier.bytes > 0
    assert lru.stats().side_bytes == tier.bytes
    assert lru.currsize == lru.audit()
    StoreCache.of(store).query.clear()
    assert len(tier) == 0
    assert lru.stats().side_bytes == 0
    await store.query(SQL, [2])
    await store.query(SQL, [2])
    lru.resize(lru.maxsize // 2)
    assert lru.currsize == lru.audit() <= lru.maxsize
    lru.clear()
    assert len(tier) == 0
    assert lru.currsize == 0


async def test_ttl_applies_to_decoded_results(store: Store) -> None:
    clock = [1000.0]
    StoreCache.of(store).query.decoded._timer = lambda: clock[0]
    StoreCache.of(store).query.lru._timer = lambda: clock[0]
    await store.query(SQL, [4], ttl=5)
    assert (await store.query(SQL, [4], ttl=5)).cached
    clock[0] += 6
    assert not (await store.query(SQL, [4], ttl=5)).cached


async def test_floats_do_not_share_a_fast_key(store: Store) -> None:
    # 1 == 1.0 in Python, but SQLite keeps them apart: such parameters skip the decoded tier.
    assert fast_key("SELECT ?", [1.0], None) is None
    assert fast_key("SELECT ?", [True], None) is None
    assert fast_key("SELECT ?", {"a": 1}, None) == ("SELECT ?", ("named", (("a", 1),)), None)
    a = await store.query("SELECT typeof(?) FROM t LIMIT 1", [1])
    b = await store.query("SELECT typeof(?) FROM t LIMIT 1", [1.0])
    assert a.values == [("integer",)]
    assert b.values == [("real",)]
    assert (await store.query("SELECT typeof(?) FROM t LIMIT 1", [1.0])).values == [("real",)]


def test_frequently_read_compressed_values_go_back_to_raw() -> None:
    rng = random.Random(3)
    c = CompressedLRU(1 << 20)
    values = {f"row:{i}": json_row(rng, i) for i in range(1500)}  # ~2 MB raw into 1 MiB
    for k, v in values.items():
        c.set(k, v)
    compressed = [k for k in values if k in c and c.peek_stored(k) is not None]
    target = next(k for k in compressed if c.is_compressed(c.peek_stored(k) or b""))
    for _ in range(PROMOTE_HITS):
        assert c.get(target) == values[target]
    assert not c.is_compressed(c.peek_stored(target) or b"")
    st = c.stats()
    assert st.frequent_entries >= 1
    assert st.compression.promotions >= 1
    assert c.currsize == c.audit() <= c.maxsize
    c.set(target, values[target][:-1] + b" ")  # a frequent raw value rewritten stays raw
    assert c.get(target) == values[target][:-1] + b" "
    assert c.currsize == c.audit() <= c.maxsize
