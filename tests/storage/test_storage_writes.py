"""Group commit and durability."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgestore
from edgestore.storage import Store


async def test_500_concurrent_inserts_one_bad_fails_alone(store: Store) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('taken')")
    before = store.pool.stats()

    async def insert(i: int) -> object:
        name = "taken" if i == 250 else f"n{i}"
        return await store.execute("INSERT INTO items(name, price) VALUES (?, ?)", [name, i])

    results = await asyncio.gather(*(insert(i) for i in range(500)), return_exceptions=True)
    failures = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    assert len(failures) == 1
    index, error = failures[0]
    assert index == 250
    assert isinstance(error, edgestore.ConstraintViolation)
    assert error.code == "SQLITE_CONSTRAINT_UNIQUE"
    assert all(getattr(r, "rows_affected", None) == 1 for i, r in enumerate(results) if i != 250)
    rowids = {getattr(r, "last_insert_rowid", None) for i, r in enumerate(results) if i != 250}
    assert len(rowids) == 499
    res = await store.query("SELECT count(*), sum(price) FROM items WHERE name != 'taken'")
    assert res.values == [(499, sum(range(500)) - 250)]
    after = store.pool.stats()
    # They were coalesced: far fewer transactions than writes.
    assert after.grouped_writes - before.grouped_writes == 500
    assert after.group_commits - before.group_commits < 500


async def test_statement_that_rolls_back_the_transaction_fails_alone(store: Store) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('taken')")
    results = await asyncio.gather(
        store.execute("INSERT INTO items(name) VALUES ('a')"),
        store.execute("INSERT OR ROLLBACK INTO items(name) VALUES ('taken')"),
        store.execute("INSERT INTO items(name) VALUES ('b')"),
        return_exceptions=True,
    )
    assert isinstance(results[1], edgestore.ConstraintViolation)
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    res = await store.query("SELECT name FROM items ORDER BY name")
    assert res.values == [("a",), ("b",), ("taken",)]


async def test_versions_move_before_the_write_is_acknowledged(store: Store) -> None:
    seen: list[int] = []
    store.add_commit_listener(lambda tables: seen.append(store.versions.get("items")))
    v0 = store.versions.get("items")
    stamp = store.versions.stamp(frozenset({"items"}))
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    assert store.versions.get("items") > v0
    assert store.versions.stamp(frozenset({"items"})) != stamp
    assert seen
    assert seen[-1] == store.versions.get("items")


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import edgestore

    async def main() -> None:
        store = await edgestore.open(sys.argv[1], schemas_dir=None, idle_timeout=0)
        await store.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
        i = 0
        while True:
            batch = [store.execute("INSERT INTO t(v) VALUES (?)", [f"v{i + k}"]) for k in range(10)]
            await asyncio.gather(*batch)
            i += 10
            print(i, flush=True)  # acknowledged: all rows up to i committed

    asyncio.run(main())
    """
)


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged = 0
    try:
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 300:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert acknowledged >= 300
    raw = apsw.Connection(str(db))
    count = raw.execute("SELECT count(*) FROM t").fetchall()[0][0]
    assert count >= acknowledged
    assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    raw.close()
    # and the store opens it again
    with edgestore.connect(db, schemas_dir=None) as again:
        assert again.query("SELECT count(*) FROM t").values[0][0] == count


async def test_close_finishes_queued_writes(db_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None)
    await st.execute("CREATE TABLE t(v INT)")
    pending = [asyncio.create_task(st.execute("INSERT INTO t VALUES (?)", [i])) for i in range(50)]
    await asyncio.sleep(0)  # let them queue
    await st.close()
    results = await asyncio.gather(*pending, return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, edgestore.StoreClosedError)]
    assert len(done) + len(refused) == 50
    raw = apsw.Connection(str(db_path))
    assert raw.execute("SELECT count(*) FROM t").fetchall() == [(len(done),)]
    raw.close()


async def test_cancelled_queued_write_does_not_run(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO items(name) VALUES ('tx')")
        queued = asyncio.create_task(store.execute("INSERT INTO items(name) VALUES ('cancelled')"))
        await asyncio.sleep(0.01)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
    await store.execute("INSERT INTO items(name) VALUES ('after')")
    res = await store.query("SELECT name FROM items ORDER BY id")
    assert res.values == [("tx",), ("after",)]


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_group_commit_commits_exactly_the_good_writes(
    tmp_path_factory: pytest.TempPathFactory, keys: list[int]
) -> None:
    """Concurrent inserts of possibly duplicate keys: the first of each key wins, the rest
    fail alone with a UNIQUE violation, and the table holds exactly the winners."""
    path = tmp_path_factory.mktemp("prop") / "p.db"

    async def scenario() -> None:
        async with await edgestore.open(path, schemas_dir=None) as store:
            await store.execute("CREATE TABLE k(key INTEGER UNIQUE)")
            results = await asyncio.gather(
                *(store.execute("INSERT INTO k VALUES (?)", [key]) for key in keys),
                return_exceptions=True,
            )
            seen: set[int] = set()
            for key, result in zip(keys, results, strict=True):
                if key in seen:
                    assert isinstance(result, edgestore.ConstraintViolation)
                else:
                    assert not isinstance(result, BaseException)
                    seen.add(key)
            rows = await store.query("SELECT key FROM k ORDER BY key")
            assert [r[0] for r in rows.values] == sorted(seen)

    asyncio.run(scenario())
