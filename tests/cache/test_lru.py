"""CompressedLRU: values, LRU order, TTL, counters, size accounting, compression, threads."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

import pytest

from edgestore.cache import CompressedLRU
from edgestore.cache.lru import ENTRY_OVERHEAD
from edgestore.errors import ValueTooLarge

from .helpers import json_row


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``cond`` (a background dictionary training) for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_get_set_delete_and_counters() -> None:
    c = CompressedLRU(1 << 20)
    assert c.get("a") is None
    c.set("a", b"1")
    c.set(b"q", b"2")
    assert c.get("a") == b"1"
    assert c.get(b"q") == b"2"
    assert c.get("zz", b"default") == b"default"
    assert c.delete("a") is True
    assert c.delete("a") is False
    s = c.stats()
    assert (s.hits, s.misses, s.sets, s.deletes, s.entries) == (2, 2, 2, 1, 1)
    assert s.bytes == c.currsize == c.audit()
    c.clear()
    assert len(c) == 0
    assert c.currsize == 0


def test_charge_is_honest_and_recomputed_on_replace() -> None:
    c = CompressedLRU(1 << 20)
    c.set("k", b"x" * 10)
    small = c.currsize
    # value bytes + bytes header + key object + bookkeeping, never just len(value)
    assert small >= 10 + ENTRY_OVERHEAD
    c.set("k", b"x" * 500)
    assert c.currsize == small + 490
    c.set("k", b"x" * 10)
    assert c.currsize == small
    assert c.audit() == c.currsize


def test_lru_order() -> None:
    one = CompressedLRU(1 << 20)
    one.set("probe", b"v" * 100)
    per_entry = one.currsize
    c = CompressedLRU(3 * per_entry)
    for k in ("a", "b", "c"):
        c.set(k, b"v" * 100)
    assert c.get("a") is not None  # a is now the most recent: b is the oldest
    c.set("d", b"v" * 100)
    assert "b" not in c
    assert all(k in c for k in ("a", "c", "d"))
    assert c.stats().evictions == 1
    c.get("c")
    c.set("e", b"v" * 100)
    assert "a" not in c
    assert "c" in c


def test_oversized_value_is_refused_and_cache_untouched() -> None:
    c = CompressedLRU(64 * 1024, dictionary=False)
    rng = random.Random(1)
    for i in range(20):
        c.set(f"k{i}", json_row(rng, i, 600))
    before = {k: c.get(k) for k in c}
    stats = c.stats()
    with pytest.raises(ValueTooLarge):
        c.set("k3", os.urandom(200 * 1024))  # incompressible and bigger than the cap
    with pytest.raises(ValueTooLarge):
        c.set("new", os.urandom(70 * 1024))
    assert {k: c.get(k) for k in c} == before
    after = c.stats()
    assert after.bytes == stats.bytes
    assert after.entries == stats.entries
    assert after.evictions == stats.evictions
    assert after.rejections == 2


def test_ttl_expiry_with_injected_clock() -> None:
    clock = Clock()
    c = CompressedLRU(1 << 20, timer=clock)
    c.set("short", b"s", ttl=5)
    c.set("long", b"l" * 2000, ttl=50)
    c.set("forever", b"f")
    clock.now += 4.9
    assert c.get("short") == b"s"
    clock.now += 0.2
    assert c.get("short") is None
    assert "long" in c
    assert c.stats().expirations == 1
    clock.now += 100
    assert "long" not in c  # presence respects TTL too
    assert c.expire() == 1  # dropped by the sweep, bytes given back
    assert c.get("forever") == b"f"
    assert c.currsize == c.audit()
    with pytest.raises(ValueError, match="ttl"):
        c.set("bad", b"x", ttl=0)


def test_expired_entries_are_purged_on_later_sets() -> None:
    clock = Clock()
    c = CompressedLRU(1 << 20, timer=clock)
    for i in range(100):
        c.set(f"t{i}", b"v" * 100, ttl=1)
    clock.now += 2
    c.set("fresh", b"v")
    assert len(c) == 1
    assert c.stats().expirations == 100


def test_compression_under_pressure_round_trips() -> None:
    rng = random.Random(2)
    c = CompressedLRU(2 << 20)
    values = {f"row:{i}": json_row(rng, i) for i in range(3000)}  # ~4.2 MB raw
    for k, v in values.items():
        c.set(k, v)
    s = c.stats()
    assert s.compressed_entries > 0
    assert s.bytes <= 2 << 20
    assert s.ratio > 1.5
    # more entries held than the raw bytes would allow
    assert s.value_bytes > 2 << 20
    # (reading promotes hot values back to raw, which may evict others: None is allowed)
    got = {k: c.get(k) for k in c}
    assert sum(v is not None for v in got.values()) > len(got) // 2
    assert all(v == values[k] for k, v in got.items() if v is not None)
    assert c.currsize == c.audit()


def test_small_values_stay_raw() -> None:
    c = CompressedLRU(64 * 1024)
    for i in range(2000):
        c.set(f"s{i}", b"a" * 200)
    assert c.stats().compressed_entries == 0


def test_big_values_compressed_when_stored() -> None:
    c = CompressedLRU(1 << 20)
    c.set("big", b"abc" * 20_000)
    assert c.stats().compressed_entries == 1
    assert c.get("big") == b"abc" * 20_000


def test_resize_shrinks_and_grows() -> None:
    c = CompressedLRU(1 << 20)
    for i in range(1000):
        c.set(f"k{i}", b"v" * 300)
    c.resize(100_000)
    assert c.maxsize == 100_000
    assert c.currsize <= 100_000
    assert c.currsize == c.audit()
    assert "k999" in c
    assert "k0" not in c
    c.resize(1 << 20)
    c.set("again", b"v" * 300)
    assert c.currsize <= 1 << 20


def test_dictionary_training_improves_ratio() -> None:
    rng = random.Random(3)
    rows = [json_row(rng, i) for i in range(4000)]
    plain = CompressedLRU(2 << 20, dictionary=False)
    trained = CompressedLRU(2 << 20, dictionary=True)
    for i, r in enumerate(rows[:2000]):
        plain.set(f"r{i}", r)
        trained.set(f"r{i}", r)
    trained.codec.train_now()  # unless the background training already took the samples
    assert wait_for(lambda: trained.codec.stats().trainings >= 1)
    for i, r in enumerate(rows[2000:]):
        plain.set(f"x{i}", r)
        trained.set(f"x{i}", r)
    p, t = plain.stats(), trained.stats()
    assert t.compression.dictionary_id is not None
    assert t.compression.dictionary_bytes > 0
    # the dictionary makes 1.4 KB rows compress markedly better, so more rows fit
    assert t.compression.ratio > p.compression.ratio * 1.2
    assert t.entries > p.entries
    got = [trained.get(k) for k in trained.keys()[:200]]
    assert sum(v is not None for v in got) > 100
    assert all(v.startswith(b'{"id":') for v in got if v is not None)


def test_dictionary_is_retrained_when_the_data_changes() -> None:
    rng = random.Random(4)
    c = CompressedLRU(2 << 20)
    codec = c.codec
    codec.window = 64
    for i in range(1500):
        c.set(f"a{i}", json_row(rng, i))
    codec.train_now()
    assert wait_for(lambda: codec.stats().trainings >= 1)
    first = codec.stats().dictionary_id
    assert first is not None

    def other(i: int) -> bytes:  # same size class, a completely different shape
        return (
            ";".join(f"{rng.random():.12f}|{rng.choice(['Z', 'Q', 'X'])}" for _ in range(90))
        ).encode()

    for i in range(6000):
        c.set(f"b{i}", other(i))
        if codec.stats().trainings >= 2:
            break
    codec.train_now()
    assert wait_for(lambda: codec.stats().trainings >= 2)
    assert codec.stats().dictionary_id != first
    # entries written with the first dictionary still decode
    assert all(c.decompress(k, c.peek_stored(k) or b"") is not None for k in c)


def test_thread_safety_under_concurrent_use() -> None:
    c = CompressedLRU(512 * 1024)
    keys = [f"k{i}" for i in range(400)]

    def value(k: str, n: int) -> bytes:
        return (k.encode() + b":") * n

    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(4000):
                k = rng.choice(keys)
                op = rng.random()
                if op < 0.5:
                    got = c.get(k)
                    if got is not None:
                        assert got.startswith(k.encode() + b":"), got[:20]
                        assert len(got) % (len(k) + 1) == 0
                elif op < 0.9:
                    c.set(k, value(k, rng.choice((5, 50, 400))), ttl=rng.choice((None, 30)))
                else:
                    c.delete(k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert c.currsize == c.audit()
    assert c.currsize <= c.maxsize
    s = c.stats()
    assert s.sets > 0
    assert s.hits > 0
