"""The pool: at most 3 connections, idle close with checkpoint, reopen, timeouts, inline runs."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import apsw
import pytest

import edgestore
from edgestore.storage import Store

ITEMS = "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, price INT)"


def _open_db_files(db_path: Path) -> int:
    """How many file descriptors of this process point at the database file itself."""
    target = str(db_path.resolve())
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            continue
    return count


async def test_200_concurrent_mixed_tasks_use_at_most_3_connections(
    db_path: Path,
) -> None:
    st = await edgestore.open(db_path, schemas_dir=None, idle_timeout=0, inline_budget=50)
    try:
        await st.execute(ITEMS)
        await st.batch([("INSERT INTO items(name) VALUES (?)", [f"seed{i}"]) for i in range(50)])
        peak_fds = 0
        stop = asyncio.Event()

        async def sampler() -> None:
            nonlocal peak_fds
            while not stop.is_set():
                peak_fds = max(peak_fds, _open_db_files(db_path))
                await asyncio.sleep(0)

        rng = random.Random(7)

        async def task(i: int) -> None:
            kind = rng.choice(["point", "scan", "write", "tx", "deps"])
            if kind == "point":
                await st.query("SELECT * FROM items WHERE id = ?", [rng.randint(1, 50)])
            elif kind == "scan":
                # Long enough to overrun a 50-step inline budget: runs on a thread.
                await st.query("SELECT count(*), sum(length(name)) FROM items")
            elif kind == "write":
                await st.execute("INSERT INTO items(name) VALUES (?)", [f"t{i}"])
            elif kind == "tx":
                async with st.transaction() as tx:
                    await tx.execute("UPDATE items SET price = ? WHERE id = 1", [i])
            else:
                await st.query("SELECT name FROM items WHERE name > ? LIMIT 3", [f"seed{i % 10}"])

        sampling = asyncio.create_task(sampler())
        await asyncio.gather(*(task(i) for i in range(200)))
        stop.set()
        await sampling
        stats = st.pool.stats()
        assert stats.peak_connections <= 3
        assert stats.max_connections == 3
        assert peak_fds <= 3
        assert stats.connections_open <= 3
        assert stats.inline_runs > 0
        assert stats.thread_runs > 0
    finally:
        await st.close()
    assert _open_db_files(db_path) == 0


async def test_idle_close_leaves_a_complete_db_file(db_path: Path, tmp_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None, idle_timeout=0.2)
    try:
        await st.execute(ITEMS)
        await asyncio.gather(
            *(st.execute("INSERT INTO items(name) VALUES (?)", [f"n{i}"]) for i in range(100))
        )
        assert (await st.query("SELECT count(*) FROM items")).values == [(100,)]
        for _ in range(100):
            if st.pool.stats().connections_open == 0:
                break
            await asyncio.sleep(0.05)
        stats = st.pool.stats()
        assert stats.connections_open == 0
        assert not stats.writer_open
        assert stats.idle_closes >= 2
        assert _open_db_files(db_path) == 0
        # The .db file alone holds every committed row.
        copy = tmp_path / "copy.db"
        shutil.copyfile(db_path, copy)
        raw = apsw.Connection(str(copy))
        assert raw.execute("SELECT count(*) FROM items").fetchall() == [(100,)]
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        raw.close()
        # The next call reconnects transparently.
        await st.execute("INSERT INTO items(name) VALUES ('again')")
        assert (await st.query("SELECT count(*) FROM items")).values == [(101,)]
        assert st.pool.stats().connections_open >= 1
    finally:
        await st.close()


async def test_close_idle_now(store: Store) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    await store.query("SELECT * FROM items")
    assert store.pool.stats().connections_open == 2
    await store.close_idle()
    assert store.pool.stats().connections_open == 0
    assert (await store.query("SELECT count(*) FROM items")).values == [(1,)]


async def test_pool_timeout_when_writer_is_held(db_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None, pool_timeout=0.2)
    try:
        await st.execute(ITEMS)
        async with st.transaction() as tx:
            await tx.execute("INSERT INTO items(name) VALUES ('held')")
            with pytest.raises(edgestore.PoolTimeout):
                await st.execute("INSERT INTO items(name) VALUES ('queued')")
            with pytest.raises(edgestore.PoolTimeout):
                async with st.transaction():
                    pass
        # The timed-out write never ran.
        res = await st.query("SELECT name FROM items")
        assert res.values == [("held",)]
        assert st.pool.stats().timeouts == 2
    finally:
        await st.close()


async def test_pool_timeout_when_readers_are_pinned(db_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None, pool_timeout=0.2, max_readers=1)
    try:
        session = await st.session()
        await session.execute("BEGIN TRANSACTION READONLY")
        await session.execute("SELECT 1")
        with pytest.raises(edgestore.PoolTimeout):
            await st.query("SELECT 2")
        await session.execute("COMMIT")
        assert (await st.query("SELECT 3")).values == [(3,)]
    finally:
        await st.close()


async def test_long_reads_leave_the_event_loop(store: Store) -> None:
    sql = (
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000) "
        "SELECT count(*) FROM c"
    )
    before = store.pool.stats()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    res = await store.query(sql)
    t.cancel()
    assert res.values == [(200000,)]
    after = store.pool.stats()
    assert after.inline_overruns == before.inline_overruns + 1
    assert after.thread_runs == before.thread_runs + 1
    assert ticks > 0  # the loop kept running while SQLite worked


async def test_point_reads_run_inline(store: Store) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    before = store.pool.stats().inline_runs
    for _ in range(10):
        # cache=False: a cache hit would not reach SQLite at all.
        await store.query("SELECT * FROM items WHERE id = 1", cache=False)
    assert store.pool.stats().inline_runs == before + 10


async def test_inline_disabled(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, inline_budget=0) as st:
        assert (await st.query("SELECT 1")).values == [(1,)]
        stats = st.pool.stats()
        assert stats.inline_runs == 0
        assert stats.thread_runs == 1


async def test_no_readers_reads_use_the_writer(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, max_readers=0) as st:
        await st.execute(ITEMS)
        await st.execute("INSERT INTO items(name) VALUES ('a')")
        assert (await st.query("SELECT name FROM items")).values == [("a",)]
        stats = st.pool.stats()
        assert stats.readers_open == 0
        assert stats.peak_connections == 1


async def test_statement_timeout(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, statement_timeout=0.05) as st:
        endless = (
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c"
        )
        with pytest.raises(edgestore.StatementTimeout) as info:
            await st.query(endless)
        assert info.value.code == "SQLITE_INTERRUPT"
        assert (await st.query("SELECT 1")).values == [(1,)]


async def test_idle_close_never_closes_connections_in_use(db_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None, idle_timeout=0.1)
    try:
        await st.execute(ITEMS)
        session = await st.session()
        await session.execute("BEGIN TRANSACTION READONLY")
        await session.execute("SELECT count(*) FROM items")
        async with st.transaction() as tx:
            await tx.execute("INSERT INTO items(name) VALUES ('slow')")
            await asyncio.sleep(0.4)  # several idle periods while both are held
            assert st.pool.stats().writer_open
            assert st.pool.stats().readers_open == 1
            await tx.execute("INSERT INTO items(name) VALUES ('still here')")
        assert (await session.execute("SELECT count(*) FROM items")).values == [(0,)]
        await session.execute("COMMIT")
        await session.close()
        for _ in range(100):
            if st.pool.stats().connections_open == 0:
                break
            await asyncio.sleep(0.05)
        assert st.pool.stats().connections_open == 0
        assert (await st.query("SELECT count(*) FROM items")).values == [(2,)]
    finally:
        await st.close()
