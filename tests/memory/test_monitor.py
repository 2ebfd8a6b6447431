"""MemoryMonitor driven by an injected RSS source: levels, hysteresis, actions, recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import edgestore
from edgestore.cache import CompressedLRU
from edgestore.config import MiB, Settings
from edgestore.errors import InvalidRequest
from edgestore.memory import Level, MemoryMonitor, cgroup_limit, rss_bytes

BUDGET = 1000 * MiB


class FakeRSS:
    def __init__(self) -> None:
        self.value = 100 * MiB

    def set_ratio(self, ratio: float) -> None:
        self.value = int(BUDGET * ratio)

    def __call__(self) -> int:
        return self.value


def monitor(lru: CompressedLRU | None = None) -> tuple[MemoryMonitor, FakeRSS]:
    rss = FakeRSS()
    return MemoryMonitor(Settings(), lru=lru, rss=rss, budget=BUDGET), rss


async def walk(m: MemoryMonitor, rss: FakeRSS, ratios: list[float]) -> list[Level]:
    out = []
    for r in ratios:
        rss.set_ratio(r)
        out.append(await m.tick())
    return out


async def test_levels_up_immediately() -> None:
    m, rss = monitor()
    seen = await walk(m, rss, [0.5, 0.69, 0.70, 0.86, 0.95, 0.99])
    assert seen == [
        Level.NORMAL,
        Level.NORMAL,
        Level.WARNING,
        Level.CRITICAL,
        Level.EMERGENCY,
        Level.EMERGENCY,
    ]
    assert m.refuse_non_essential


async def test_hysteresis_no_flapping_around_a_threshold() -> None:
    m, rss = monitor()
    seen = await walk(m, rss, [0.70, 0.69, 0.71, 0.68, 0.70, 0.66, 0.649])
    assert seen[:6] == [Level.WARNING] * 6  # stays until 5 points below 70%
    assert seen[6] == Level.NORMAL
    assert m.transitions == 2


async def test_down_several_levels_at_once_and_refusal_ends() -> None:
    m, rss = monitor()
    await walk(m, rss, [0.97])
    assert m.refuse_non_essential
    assert await walk(m, rss, [0.91]) == [Level.EMERGENCY]  # within the hysteresis band
    assert await walk(m, rss, [0.89]) == [Level.CRITICAL]
    assert not m.refuse_non_essential
    assert await walk(m, rss, [0.10]) == [Level.NORMAL]


async def test_cache_cap_shrinks_and_recovers_step_by_step() -> None:
    lru = CompressedLRU(100 * MiB)
    m, rss = monitor(lru)
    caps = []
    for r in [0.75, 0.9, 0.5, 0.5, 0.5, 0.5]:
        rss.set_ratio(r)
        await m.tick()
        caps.append(lru.maxsize // MiB)
    assert caps == [75, 50, 75, 100, 100, 100]


async def test_emergency_clears_caches_and_actions_are_registered() -> None:
    lru = CompressedLRU(10 * MiB)
    for i in range(100):
        lru.set(f"k{i}", b"v" * 100)
        lru.set(b"q%d" % i, b"v" * 100)
    m, rss = monitor(lru)
    ran: list[str] = []

    async def custom() -> None:
        ran.append("custom")

    m.register(Level.WARNING, lambda: ran.append("sync"), name="sync")
    m.register(Level.EMERGENCY, custom)
    assert "custom" in m.actions(Level.EMERGENCY)
    await walk(m, rss, [0.72])
    assert ran == ["sync"]
    assert len(lru) == 200
    await walk(m, rss, [0.99])
    assert ran == ["sync", "custom"]
    assert len(lru) == 0
    assert "clear_caches" in m.last_actions
    snap = m.snapshot()
    assert snap.level == "emergency"
    assert snap.refuse_non_essential is True
    assert snap.budget_bytes == BUDGET
    assert snap.rss_bytes == int(BUDGET * 0.99)
    assert snap.cache_max_bytes == 5 * MiB


async def test_failing_action_does_not_stop_the_others() -> None:
    m, rss = monitor()

    def broken() -> None:
        raise RuntimeError("nope")

    m.register(Level.WARNING, broken)
    await walk(m, rss, [0.8])
    assert m.level is Level.WARNING
    assert "broken" not in m.last_actions
    assert "collect_garbage" in m.last_actions


async def test_optimize_and_clear() -> None:
    lru = CompressedLRU(8 * MiB)
    m, _ = monitor(lru)
    for i in range(10):
        lru.set(f"k{i}", b"x")
        lru.set(b"q%d" % i, b"y")
    assert await m.optimize("light") == ["collect_garbage", "drop_expired"]
    assert "shrink_cache" in await m.optimize("standard")
    assert lru.maxsize == 6 * MiB
    assert "close_idle_connections" in await m.optimize("aggressive")
    assert lru.maxsize == 4 * MiB
    assert m.clear("query") == 10
    assert m.clear("kv") == 10
    assert len(lru) == 0
    await m.optimize("emergency")
    with pytest.raises(InvalidRequest):
        await m.optimize("extreme")
    with pytest.raises(InvalidRequest):
        m.clear("nothing")
    assert m.level is Level.NORMAL  # on-demand actions do not change the measured level
    await m.tick()
    assert lru.maxsize == 6 * MiB  # and the cap recovers step by step


async def test_with_a_real_store_closes_idle_connections(tmp_path: Path) -> None:
    store = await edgestore.open(tmp_path / "m.db", schemas_dir=None, idle_timeout=0)
    try:
        await store.execute("CREATE TABLE t(x)")
        await store.query("SELECT * FROM t")
        assert store.pool.stats().connections_open >= 1
        rss = FakeRSS()
        m = MemoryMonitor(store.settings, store, rss=rss, budget=BUDGET)
        assert m.lru is store.cache.lru
        await store.cache.set("a", 1)
        rss.set_ratio(0.9)
        await m.tick()
        assert store.pool.stats().connections_open == 0
        rss.set_ratio(0.99)
        await m.tick()
        assert await store.cache.get("a") is None
        # the store keeps working after the emergency
        assert (await store.query("SELECT count(*) FROM t")).values == [(0,)]
    finally:
        await store.close()


async def test_background_sampling_start_stop() -> None:
    rss = FakeRSS()
    m = MemoryMonitor(Settings(memory_sample_interval=0.01), rss=rss, budget=BUDGET)
    await m.start()
    rss.set_ratio(0.9)
    for _ in range(500):
        if m.level is Level.CRITICAL:
            break
        await asyncio.sleep(0.01)
    await m.stop()
    assert m.level is Level.CRITICAL
    assert m.samples >= 1


def test_budget_sources() -> None:
    assert MemoryMonitor(Settings(memory_budget_bytes=123 * MiB)).budget == 123 * MiB
    m = MemoryMonitor(Settings())
    assert m.budget == (m.cgroup_limit or 512 * MiB)
    assert rss_bytes() > 1 * MiB


def test_cgroup_limit_detection(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    # cgroup v2, limit on the process's own group
    (tmp_path / "v2" / "app").mkdir(parents=True)
    (tmp_path / "v2" / "app" / "memory.max").write_text("268435456\n")
    proc.write_text("0::/app\n")
    assert cgroup_limit(tmp_path / "v2", proc) == 256 * MiB
    (tmp_path / "v2" / "app" / "memory.max").write_text("max\n")
    assert cgroup_limit(tmp_path / "v2", proc) is None
    # cgroup v1
    (tmp_path / "v1" / "memory" / "grp").mkdir(parents=True)
    (tmp_path / "v1" / "memory" / "grp" / "memory.limit_in_bytes").write_text("134217728\n")
    proc.write_text("4:memory:/grp\n0::/\n")
    assert cgroup_limit(tmp_path / "v1", proc) == 128 * MiB
    (tmp_path / "v1" / "memory" / "grp" / "memory.limit_in_bytes").write_text(
        "9223372036854771712\n"
    )
    assert cgroup_limit(tmp_path / "v1", proc) is None
    assert cgroup_limit(tmp_path / "none", tmp_path / "missing") is None
