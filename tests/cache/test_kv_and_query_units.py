"""KVCache and QueryCache on their own (no store): values, TTL, keys, stamps, single flight."""

from __future__ import annotations

import asyncio
import math

import pytest

from edgestore.cache import CompressedLRU, KVCache, QueryCache, is_volatile, normalize_sql
from edgestore.errors import CacheError, ValueTooLarge
from edgestore.storage import Column, Result


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_kv_values_round_trip() -> None:
    kv = KVCache(CompressedLRU(1 << 20))
    values = {
        "none": None,
        "int": -(2**63),
        "float": 1.5e-300,
        "str": "héllo ✓",
        "bytes": b"\x00\xff" * 10,
        "list": [1, "a", None, b"z", [2.5]],
        "dict": {"a": {"b": [1, 2]}, "c": True},
        "big": "x" * 100_000,
    }
    for k, v in values.items():
        await kv.set(k, v)
    for k, v in values.items():
        assert await kv.get(k) == v
    assert await kv.get("missing", "dflt") == "dflt"
    assert await kv.delete("int") is True
    assert await kv.get("int") is None
    assert "str" in kv


async def test_kv_ttl_and_default_ttl() -> None:
    clock = Clock()
    kv = KVCache(CompressedLRU(1 << 20, timer=clock), default_ttl=10)
    await kv.set("a", 1)
    await kv.set("b", 2, ttl=100)
    clock.now = 11
    assert await kv.get("a") is None
    assert await kv.get("b") == 2


async def test_kv_errors() -> None:
    kv = KVCache(CompressedLRU(64 * 1024, dictionary=False))
    with pytest.raises(CacheError):
        await kv.set("obj", object())
    with pytest.raises(TypeError):
        await kv.set(b"bytes-key", 1)  # type: ignore[arg-type]
    await kv.set("keep", "me")
    import os

    with pytest.raises(ValueTooLarge):
        await kv.set("huge", os.urandom(100 * 1024))
    assert await kv.get("keep") == "me"


async def test_kv_clear_leaves_query_entries() -> None:
    lru = CompressedLRU(1 << 20)
    kv, qc = KVCache(lru), QueryCache(lru)
    await kv.set("a", 1)
    key = qc.key("select * from t", None)
    await qc.put(key, (0, 1), Result((Column("x", "INT"),), [(1,)]))
    assert await kv.clear() == 1
    assert await qc.get(key, (0, 1)) is not None
    assert qc.clear() == 1
    assert len(lru) == 0


def test_normalize_and_volatile() -> None:
    assert normalize_sql("SELECT  *\n\tFROM t  WHERE a = 'x  y' ;") == (
        "SELECT * FROM t WHERE a = 'x  y'"
    )
    assert normalize_sql('select "a  b" from t') == 'select "a  b" from t'
    assert is_volatile("select random() from t")
    assert is_volatile("SELECT datetime('now')")
    assert is_volatile("select * from t where ts > CURRENT_TIMESTAMP")
    assert not is_volatile("select date(created) from t")
    assert not is_volatile("select 'random()' from t")


def test_keys_distinguish_params_and_limits() -> None:
    qc = QueryCache(CompressedLRU(1 << 20))
    k = qc.key
    assert k("select 1 from t", None) == k("select  1\nfrom t;", None)
    assert k("select ? from t", [1]) != k("select ? from t", [1.0])
    assert k("select ? from t", ["1"]) != k("select ? from t", [b"1"])
    assert k("select :a, :b from t", {"a": 1, "b": 2}) == k(
        "select :a, :b from t", {"b": 2, "a": 1}
    )
    assert k("select * from t", None, 10) != k("select * from t", None)
    assert not qc.cacheable("select 1", frozenset())
    assert qc.cacheable("select * from t", frozenset({"t"}))


async def test_result_encoding_is_lossless() -> None:
    qc = QueryCache(CompressedLRU(1 << 20))
    cols = (Column("a", "INTEGER"), Column("b", None), Column("c", "BLOB"))
    values = [
        (None, 0, b""),
        (2**63 - 1, -(2**63), b"\x00\x01"),
        (1.0, 1, "1"),
        (float("inf"), -0.0, "ünï"),
        (float("nan"), 3.14, b"x" * 5000),
    ]
    key = qc.key("select * from t", None)
    await qc.put(key, ("e", 1), Result(cols, values, truncated=True))
    got = await qc.get(key, ("e", 1))
    assert got is not None
    assert got.cached
    assert got.truncated
    assert got.columns == cols
    for row, want in zip(got.values, values, strict=True):
        assert isinstance(row, tuple)
        for a, b in zip(row, want, strict=True):
            assert type(a) is type(b)
            assert a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


async def test_stale_stamp_is_a_miss_and_dropped() -> None:
    qc = QueryCache(CompressedLRU(1 << 20))
    key = qc.key("select * from t", None)
    await qc.put(key, (0, 5), Result((Column("x", None),), [(1,)]))
    assert await qc.get(key, (0, 6)) is None
    assert qc.stats().stale == 1
    assert await qc.get(key, (0, 5)) is None  # dropped on sight


async def test_single_flight_runs_once_per_key_and_stamp() -> None:
    qc = QueryCache(CompressedLRU(1 << 20))
    runs = 0
    gate = asyncio.Event()
    stamp = [(0, 1)]

    async def run() -> Result:
        nonlocal runs
        runs += 1
        mine = runs
        await gate.wait()
        return Result((Column("x", None),), [(mine,)])

    key = qc.key("select x from t", None)
    tasks = [asyncio.create_task(qc.fetch(key, lambda: stamp[0], run)) for _ in range(10)]
    await asyncio.sleep(0)
    # a caller after a write (new stamp) does not join the older run
    stamp[0] = (0, 2)
    late = asyncio.create_task(qc.fetch(key, lambda: stamp[0], run))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert runs == 2
    assert all(r.values == [(1,)] for r in results)
    assert sum(r.cached for r in results) == 9
    assert (await late).values == [(2,)]
    assert qc.stats().coalesced == 9
    # the first run's result was not stored: its stamp moved while it ran
    hit = await qc.fetch(key, lambda: stamp[0], run)
    assert hit.cached
    assert hit.values == [(2,)]


async def test_single_flight_shares_errors() -> None:
    qc = QueryCache(CompressedLRU(1 << 20))
    gate = asyncio.Event()

    async def run() -> Result:
        await gate.wait()
        raise RuntimeError("boom")

    key = qc.key("select x from t", None)
    tasks = [asyncio.create_task(qc.fetch(key, lambda: 1, run)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert qc.stats().inflight == 0
