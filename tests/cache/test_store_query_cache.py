"""The query cache inside the Store: never stale after a write, selective invalidation,
external writers, bypass, stampede protection, the key/value cache and the stats."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import edgestore
from edgestore.cache.store_cache import StoreCache
from edgestore.storage import Store

SCHEMA = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT)",
    "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INT REFERENCES users(id), total REAL)",
    "CREATE TABLE products(id INTEGER PRIMARY KEY, title TEXT, price REAL)",
    "CREATE VIEW user_totals AS SELECT u.name, sum(o.total) AS spent "
    "FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.id",
]

JOIN = "SELECT u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id ORDER BY o.id"
VIEW = "SELECT name, spent FROM user_totals ORDER BY name"
CTE = (
    "WITH big AS (SELECT user_id, total FROM orders WHERE total > ?) "
    "SELECT count(*), coalesce(sum(total), 0) FROM big"
)
SUBQ = "SELECT name FROM users WHERE id IN (SELECT user_id FROM orders) ORDER BY name"
PRODUCTS = "SELECT title, price FROM products ORDER BY id"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await edgestore.open(tmp_path / "cache.db", schemas_dir=None, idle_timeout=0)
    for ddl in SCHEMA:
        await st.execute(ddl)
    await st.batch(
        [
            ("INSERT INTO users(id, name, city) VALUES (1, 'ann', 'oslo')", None),
            ("INSERT INTO users(id, name, city) VALUES (2, 'bob', 'rome')", None),
            ("INSERT INTO orders(user_id, total) VALUES (1, 10.5)", None),
            ("INSERT INTO orders(user_id, total) VALUES (2, 99.0)", None),
            ("INSERT INTO products(title, price) VALUES ('pen', 1.5)", None),
        ]
    )
    try:
        yield st
    finally:
        await st.close()


async def fresh(
    store: Store, sql: str, params: list[object] | None = None
) -> list[tuple[object, ...]]:
    return (await store.query(sql, params, cache=False)).values  # type: ignore[arg-type]


async def test_repeated_read_is_a_hit(store: Store) -> None:
    first = await store.query(JOIN, cache=True)
    second = await store.query(JOIN, cache=True)
    assert not first.cached
    assert second.cached
    assert second.values == first.values
    assert second.columns == first.columns
    bypass = await store.query(JOIN, cache=False)
    assert not bypass.cached
    stats = StoreCache.of(store).stats()
    assert stats.query.hits == 1
    assert stats.cache.entries >= 1


@pytest.mark.parametrize(("sql", "params"), [(JOIN, None), (VIEW, None), (CTE, [5]), (SUBQ, None)])
async def test_no_stale_read_after_writes(
    store: Store, sql: str, params: list[object] | None
) -> None:
    writes = [
        ("INSERT INTO orders(user_id, total) VALUES (1, 7.25)", None),
        ("UPDATE orders SET total = total + 1 WHERE user_id = 2", None),
        ("INSERT INTO users(id, name, city) VALUES (3, 'cy', 'nice')", None),
        ("INSERT INTO orders(user_id, total) VALUES (3, 50)", None),
        ("UPDATE users SET name = 'anne' WHERE id = 1", None),
        ("DELETE FROM orders WHERE user_id = 2", None),
    ]
    await store.query(PRODUCTS, cache=True)
    for write, wparams in writes:
        cached = await store.query(sql, params, cache=True)
        assert cached.values == await fresh(store, sql, params)
        again = await store.query(sql, params, cache=True)
        assert again.cached
        await store.execute(write, wparams)
        after = await store.query(sql, params, cache=True)
        touched = store.deps(write).writes & store.deps(sql).reads
        # a write to a table the statement reads invalidates it; any other write does not
        assert after.cached == (not touched), write
        assert after.values == await fresh(store, sql, params), write
        # the products entry was not touched by any of these writes
        assert (await store.query(PRODUCTS, cache=True)).cached


async def test_writes_in_transactions_and_batches_invalidate(store: Store) -> None:
    await store.query(VIEW, cache=True)
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO orders(user_id, total) VALUES (2, 1)")
    res = await store.query(VIEW, cache=True)
    assert not res.cached
    assert res.values == await fresh(store, VIEW)
    await store.query(VIEW, cache=True)
    await store.batch([("UPDATE users SET name = 'zed' WHERE id = 2", None)])
    res = await store.query(VIEW, cache=True)
    assert not res.cached
    assert ("zed", 100.0) in res.values


async def test_interleaved_random_writes_never_stale(store: Store) -> None:
    rng = random.Random(5)
    queries = [(JOIN, None), (VIEW, None), (CTE, [20]), (SUBQ, None), (PRODUCTS, None)]
    for i in range(150):
        r = rng.random()
        if r < 0.3:
            await store.execute(
                "INSERT INTO orders(user_id, total) VALUES (?, ?)",
                [rng.choice([1, 2]), rng.randint(1, 60)],
            )
        elif r < 0.4:
            await store.execute("UPDATE products SET price = ? WHERE id = 1", [i])
        elif r < 0.45:
            await store.execute("UPDATE users SET city = ? WHERE id = 1", [str(i)])
        sql, params = rng.choice(queries)
        got = await store.query(sql, params, cache=True)
        assert got.values == await fresh(store, sql, params)


async def test_external_process_write_invalidates_everything(store: Store, tmp_path: Path) -> None:
    assert not (await store.query(PRODUCTS, cache=True)).cached
    assert (await store.query(PRODUCTS, cache=True)).cached
    await store.query(JOIN, cache=True)
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
        "c.execute(\"INSERT INTO products(title, price) VALUES ('ink', 2.0)\"); c.commit()"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, str(tmp_path / "cache.db")
    )
    assert await proc.wait() == 0
    res = await store.query(PRODUCTS, cache=True)
    assert not res.cached
    assert res.values == [("pen", 1.5), ("ink", 2.0)]
    # "everything changed": even the join over untouched tables is read again
    assert not (await store.query(JOIN, cache=True)).cached


async def test_invalidate_table_and_all(store: Store) -> None:
    await store.query(PRODUCTS, cache=True)
    await store.query(JOIN, cache=True)
    await store.invalidate("products")
    assert not (await store.query(PRODUCTS, cache=True)).cached
    assert (await store.query(JOIN, cache=True)).cached
    await store.invalidate()
    assert not (await store.query(JOIN, cache=True)).cached


async def test_default_follows_settings(tmp_path: Path) -> None:
    st = await edgestore.open(tmp_path / "off.db", schemas_dir=None, query_cache=False)
    try:
        await st.execute("CREATE TABLE t(x)")
        await st.query("SELECT * FROM t")
        assert not (await st.query("SELECT * FROM t")).cached
        assert (await st.query("SELECT * FROM t", cache=True)).cached is False
        assert (await st.query("SELECT * FROM t", cache=True)).cached
    finally:
        await st.close()


async def test_volatile_and_tableless_reads_are_not_cached(store: Store) -> None:
    for sql in ("SELECT random() FROM products", "SELECT 1 + 1", "SELECT datetime('now')"):
        await store.query(sql, cache=True)
        assert not (await store.query(sql, cache=True)).cached


async def test_concurrent_misses_run_once(store: Store) -> None:
    results = await asyncio.gather(*(store.query(VIEW, cache=True) for _ in range(20)))
    assert len({tuple(r.values) for r in results}) == 1
    q = StoreCache.of(store).stats().query
    assert q.stores == 1
    assert q.coalesced + q.hits == 19


async def test_ttl_and_max_rows_are_part_of_the_entry(store: Store) -> None:
    one = await store.query(JOIN, cache=True, max_rows=1)
    assert one.truncated
    assert len(one.values) == 1
    full = await store.query(JOIN, cache=True)
    assert not full.truncated
    assert len(full.values) == 2
    assert (await store.query(JOIN, cache=True, max_rows=1)).cached
    await store.query(PRODUCTS, cache=True, ttl=3600)
    assert (await store.query(PRODUCTS, cache=True)).cached


async def test_kv_cache_on_the_store(store: Store) -> None:
    await store.cache.set("session:1", {"user": 1, "roles": ["a"]}, ttl=60)
    assert await store.cache.get("session:1") == {"user": 1, "roles": ["a"]}
    await store.query(PRODUCTS, cache=True)
    stats = StoreCache.of(store).stats()
    assert stats.cache.entries == 2
    assert stats.cache.max_bytes == store.settings.cache_max_bytes
    assert StoreCache.of(store).query.clear() == 1
    assert await store.cache.get("session:1") is not None


async def test_big_results_round_trip(store: Store) -> None:
    await store.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
        "INSERT INTO products(title, price) SELECT 'item ' || i, i * 0.5 FROM n"
    )
    first = await store.query(PRODUCTS, cache=True)
    second = await store.query(PRODUCTS, cache=True)
    assert second.cached
    assert second.values == first.values
    assert len(second.values) == 5001


def test_sync_facade_uses_the_cache(tmp_path: Path) -> None:
    st = edgestore.connect(tmp_path / "sync.db", schemas_dir=None)
    try:
        st.execute("CREATE TABLE t(x)")
        st.execute("INSERT INTO t VALUES (1)")
        assert st.query("SELECT x FROM t", cache=True).values == [(1,)]
        assert st.query("SELECT x FROM t", cache=True).cached
        st.execute("INSERT INTO t VALUES (2)")
        assert st.query("SELECT x FROM t", cache=True).values == [(1,), (2,)]
    finally:
        st.close()


# -- temporary objects, triggers, views and other processes ---------------------------------

COUNT_B = "SELECT count(*), coalesce(sum(x), 0) FROM b"


@pytest.mark.parametrize(
    "trigger",
    [
        "CREATE TEMP TRIGGER copy AFTER INSERT ON main.a "
        "BEGIN INSERT INTO main.b VALUES (new.x); END",
        # SQLite reports this one to the authorizer as a trigger of main, yet it is temporary
        "CREATE TRIGGER temp.copy AFTER INSERT ON a BEGIN INSERT INTO b VALUES (new.x); END",
    ],
)
@pytest.mark.parametrize("via", ["execute", "transaction", "session"])
async def test_a_temp_trigger_never_leaves_a_stale_read(
    store: Store, trigger: str, via: str
) -> None:
    """Analyses are made on readers, which cannot see the writer's temp schema: the insert
    into ``a`` looks like it writes ``a`` only, while the trigger also writes ``b``."""
    await store.execute("CREATE TABLE a(x)")
    await store.execute("CREATE TABLE b(x)")
    await store.execute(trigger)
    # As when the insert ran before: its analysis (made on a reader) is cached.
    assert store.deps("INSERT INTO a VALUES (5)").writes == {"a"}
    assert (await store.query(COUNT_B, cache=True)).values == [(0, 0)]
    assert (await store.query(COUNT_B, cache=True)).cached
    if via == "execute":
        await store.execute("INSERT INTO a VALUES (5)")
    elif via == "transaction":
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO a VALUES (5)")
    else:
        async with await store.session() as session:
            await session.execute("BEGIN")
            await session.execute("INSERT INTO a VALUES (5)")
            await session.execute("COMMIT")
    assert await fresh(store, COUNT_B) == [(1, 5)]
    assert (await store.query(COUNT_B, cache=True)).values == [(1, 5)]


_OTHER_PROCESS = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
for line in sys.stdin:
    try:
        con.execute(line)
        print("ok", flush=True)
    except sqlite3.Error as exc:
        print("error", exc, flush=True)
"""


class OtherProcess:
    """A second process writing to the same database file, one SQL line at a time."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, path: Path) -> OtherProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _OTHER_PROCESS,
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def run(self, sql: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(sql.encode() + b"\n")
        await self.proc.stdin.drain()
        return (await self.proc.stdout.readline()).decode().strip()

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


RANDOM_READS = [
    "SELECT count(*), coalesce(sum(x), 0) FROM a",
    COUNT_B,
    "SELECT count(*), coalesce(sum(x), 0) FROM c",
    "SELECT * FROM a_and_b ORDER BY 1, 2",
    "SELECT a.x, c.x FROM a JOIN c ON c.x = a.x ORDER BY 1",
    "SELECT count(*) FROM sqlite_schema",
]


async def test_random_schema_and_writes_never_stale(store: Store, tmp_path: Path) -> None:
    """Writes through every door, temp and main triggers, views, temp tables that shadow main
    ones, schema changes and another process's writes, in random order: a cached read always
    equals a fresh one."""
    for ddl in ("CREATE TABLE a(x)", "CREATE TABLE b(x)", "CREATE TABLE c(x)"):
        await store.execute(ddl)
    await store.execute(
        "CREATE VIEW a_and_b AS SELECT 'a', count(*) FROM a UNION ALL SELECT 'b', count(*) FROM b"
    )
    triggers = {
        "temp_ab": "CREATE TEMP TRIGGER temp_ab AFTER INSERT ON main.a "
        "BEGIN INSERT INTO main.b VALUES (new.x); END",
        "temp_cb": "CREATE TRIGGER temp.temp_cb AFTER UPDATE ON c "
        "BEGIN DELETE FROM b WHERE x = old.x; END",
        "main_bc": "CREATE TRIGGER main_bc AFTER INSERT ON b "
        "BEGIN INSERT INTO c VALUES (new.x); END",
    }
    other = await OtherProcess.start(tmp_path / "cache.db")
    rng = random.Random(11)
    try:
        for step in range(300):
            r = rng.random()
            x = rng.randint(1, 9)
            table = rng.choice("abc")
            if r < 0.25:
                await store.execute(f"INSERT INTO {table}(x) VALUES (?)", [x])
            elif r < 0.35:
                await store.execute("UPDATE c SET x = ? WHERE x = ?", [x, rng.randint(1, 9)])
            elif r < 0.42:
                async with store.transaction() as tx:
                    await tx.execute(f"INSERT INTO {table}(x) VALUES (?)", [x])
                    await tx.execute(f"DELETE FROM {rng.choice('abc')} WHERE x = ?", [x + 1])
            elif r < 0.48:
                async with await store.session() as session:
                    await session.execute("BEGIN")
                    await session.execute(f"INSERT INTO {table}(x) VALUES (?)", [x])
                    await session.execute("ROLLBACK" if x % 3 == 0 else "COMMIT")
            elif r < 0.52:
                await store.batch([(f"INSERT INTO {table}(x) VALUES (?)", [x])] * 2)
            elif r < 0.62:
                name = rng.choice(sorted(triggers))
                prefix = "" if name.startswith("main") else "temp."
                await store.execute(f"DROP TRIGGER IF EXISTS {prefix}{name}")
                if rng.random() < 0.6:
                    await store.execute(triggers[name])
            elif r < 0.66:
                # A temp table named like a main one: the writer's unqualified writes go to it.
                if rng.random() < 0.5:
                    await store.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}(x)")
                else:
                    await store.execute(f"DROP TABLE IF EXISTS temp.{table}")
            elif r < 0.69:
                await store.execute("DROP VIEW IF EXISTS a_and_b")
                await store.execute(
                    "CREATE VIEW a_and_b AS SELECT 'a', sum(x) FROM a "
                    f"UNION ALL SELECT '{table}', count(*) FROM {table}"
                )
            elif r < 0.82:
                sql = rng.choice(
                    [
                        f"INSERT INTO {table}(x) VALUES ({x})",
                        f"DELETE FROM {table} WHERE x = {x}",
                        f"UPDATE {table} SET x = x + 1 WHERE x = {x}",
                    ]
                )
                assert (await other.run(sql)) == "ok"
            for read in rng.sample(RANDOM_READS, 3):
                got = await store.query(read, cache=True)
                assert got.values == await fresh(store, read), (step, read)
    finally:
        await other.stop()
