"""The statement policy through the library: refused statements never reach a connection,
introspection PRAGMAs work, and the rules per role (storage/policy.py, README "Statement
policy")."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgestore
from edgestore.storage import Store

# Each was shown to change a connection (or the whole process) while merely being analysed.
HARMFUL = [
    "PRAGMA hard_heap_limit = 1000",
    "PRAGMA soft_heap_limit = 1000",
    "PRAGMA max_page_count = 1",
    "PRAGMA ignore_check_constraints = 1",
    "PRAGMA ignore_check_constraints(1)",
    "pragma main.ignore_check_constraints = on",
    "PRAGMA \"ignore_check_constraints\" = 'on'",
    "/* hidden */ PRAGMA max_page_count=1",
    "EXPLAIN PRAGMA max_page_count = 1",
    "EXPLAIN QUERY PLAN PRAGMA hard_heap_limit = 1000",
    "PRAGMA query_only = 0",
    "PRAGMA writable_schema = 1",
    "PRAGMA cache_size = 1",
    "PRAGMA busy_timeout = 1",
    "PRAGMA case_sensitive_like = 1",
    "PRAGMA recursive_triggers = 1",
    "PRAGMA legacy_alter_table = 1",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "PRAGMA shrink_memory",
    "PRAGMA optimize",
    "PRAGMA temp_store_directory = '/tmp'",
    "; PRAGMA hard_heap_limit = 1000",
    ";\n;PRAGMA max_page_count = 1",
]


async def _still_healthy(store: Store) -> None:
    # CHECK constraints still hold, writes still fit, reads still allocate.
    await store.execute("CREATE TABLE IF NOT EXISTS checked(x INT CHECK (x > 0))")
    with pytest.raises(edgestore.DatabaseError):
        await store.execute("INSERT INTO checked VALUES (-1)")
    await store.batch([("INSERT INTO items(name) VALUES (?)", (f"n{i}",)) for i in range(300)])
    await store.execute("DELETE FROM items")
    assert (await store.query("PRAGMA hard_heap_limit")).values == [(0,)]
    assert (await store.query("PRAGMA max_page_count", cache=False)).values[0][0] > 1_000_000


@pytest.mark.parametrize("sql", HARMFUL)
async def test_harmful_pragmas_are_refused_on_every_library_path(store: Store, sql: str) -> None:
    name = sql.split("=")[0].split("(")[0].split()[-1].split(".")[-1].strip('"')
    attempts = [
        lambda: store.execute(sql),
        lambda: store.query(sql),
        lambda: store.describe(sql),
        lambda: store.batch([("SELECT 1", None), (sql, None)]),
        lambda: store.batch([(f"SELECT 1; {sql}", None)]),
    ]
    for attempt in attempts:
        with pytest.raises(edgestore.DatabaseError) as info:
            await attempt()
        if "only one SQL statement" not in str(info.value):
            assert info.value.code == "SQLITE_AUTH", sql
            assert name in str(info.value)
    async with await store.session() as session:
        with pytest.raises(edgestore.DatabaseError) as info:
            await session.execute(sql)
        assert info.value.code == "SQLITE_AUTH"
        await session.execute("BEGIN")
        with pytest.raises(edgestore.DatabaseError):
            await session.execute(sql)
        await session.execute("ROLLBACK")
    async with store.transaction() as tx:
        with pytest.raises(edgestore.DatabaseError):
            await tx.execute(sql)
    await _still_healthy(store)


async def test_introspection_pragmas_work(store: Store) -> None:
    await store.execute("CREATE TABLE child(id INTEGER PRIMARY KEY, item INT REFERENCES items(id))")
    await store.execute("CREATE INDEX child_item ON child(item)")
    cols = await store.query("PRAGMA table_info(child)")
    assert [r[1] for r in cols.values] == ["id", "item"]
    assert (await store.query("PRAGMA table_xinfo('child')")).values
    assert [r[1] for r in (await store.query("PRAGMA index_list(child)")).values] == ["child_item"]
    assert (await store.query("PRAGMA index_info(child_item)")).values[0][2] == "item"
    assert (await store.query("PRAGMA index_xinfo(child_item)")).values
    assert (await store.query("PRAGMA foreign_key_list(child)")).values[0][2] == "items"
    assert (await store.query("PRAGMA foreign_key_check")).values == []
    assert (await store.query("PRAGMA main.table_list")).values
    assert (await store.query("SELECT name FROM pragma_table_info('child')")).values == [
        ("id",),
        ("item",),
    ]
    assert (await store.query("PRAGMA user_version")).values == [(0,)]
    assert (await store.execute("PRAGMA journal_mode")).values == [("wal",)]
    assert (await store.query("PRAGMA foreign_keys")).values == [(1,)]


async def test_pragma_functions_that_act_are_refused(store: Store) -> None:
    # SQLite runs the PRAGMA when the table-valued function is read.
    for sql in ("SELECT * FROM pragma_optimize(-1)", "SELECT * FROM main.pragma_optimize"):
        with pytest.raises(edgestore.DatabaseError) as info:
            await store.execute(sql)
        assert info.value.code == "SQLITE_AUTH"
        assert "optimize" in str(info.value)


async def test_vacuum_into_and_attach_are_refused(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "copy.db"
    for sql in (f"VACUUM INTO '{target}'", f"VACUUM main INTO '{target}'"):
        with pytest.raises(edgestore.DatabaseError) as info:
            await store.execute(sql)
        assert info.value.code == "SQLITE_AUTH"
        assert "VACUUM INTO" in str(info.value)
    assert not target.exists()
    with pytest.raises(edgestore.DatabaseError) as info:
        await store.execute(f"ATTACH '{target}' AS other")
    assert info.value.code == "SQLITE_AUTH"
    assert not target.exists()
    await store.execute("VACUUM")  # the library may still vacuum


# (statement, read-only, read-write, admin): None = allowed, else the error class name.
ROLE_TABLE = [
    ("SELECT 1", None, None, None),
    ("PRAGMA table_info(items)", None, None, None),
    ("PRAGMA foreign_keys", None, None, None),
    ("PRAGMA foreign_keys = OFF", "ReadOnlyError", None, None),
    ("PRAGMA defer_foreign_keys = ON", "ReadOnlyError", None, None),
    ("PRAGMA user_version = 3", "ReadOnlyError", None, None),
    ("PRAGMA journal_mode", None, None, None),
    ("PRAGMA journal_mode = DELETE", "DatabaseError", "DatabaseError", "DatabaseError"),
    ("PRAGMA hard_heap_limit = 1", "DatabaseError", "DatabaseError", "DatabaseError"),
    ("SAVEPOINT s", "ReadOnlyError", None, None),
    ("BEGIN", None, None, None),
    ("BEGIN IMMEDIATE", "ReadOnlyError", None, None),
    ("BEGIN EXCLUSIVE", "ReadOnlyError", None, None),
    ("VACUUM", "ReadOnlyError", "DatabaseError", None),
    ("VACUUM INTO 'x.db'", "DatabaseError", "DatabaseError", "DatabaseError"),
    ("ATTACH 'x.db' AS x", "DatabaseError", "DatabaseError", "DatabaseError"),
    ("ALTER TABLE items ALTER COLUMN price TO price INT", "ReadOnlyError", None, None),
]


@pytest.mark.parametrize(("sql", "ro", "rw", "admin"), ROLE_TABLE)
def test_policy_per_role(sql: str, ro: str | None, rw: str | None, admin: str | None) -> None:
    from edgestore.storage.policy import Access, classify, permit

    expected: dict[Access, str | None] = {"read-only": ro, "read-write": rw, "admin": admin}
    stmt = classify(sql)
    for access, outcome in expected.items():
        if outcome is None:
            permit(stmt, access)
            continue
        with pytest.raises(edgestore.DatabaseError) as info:
            permit(stmt, access)
        assert type(info.value).__name__ == outcome, (sql, access)
        if outcome == "DatabaseError":
            assert info.value.code == "SQLITE_AUTH"


async def test_a_batch_of_reads_never_waits_for_the_writer(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, pool_timeout=1) as store:
        await store.execute("CREATE TABLE t(x)")
        await store.execute("INSERT INTO t VALUES (1)")
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (2)")
            # The writer is held: a read-only batch runs on a reader, in one snapshot.
            results = await store.batch(
                [("SELECT count(*) FROM t", None), ("PRAGMA table_info(t)", None)]
            )
            assert results[0].values == [(1,)]
            with pytest.raises(edgestore.DatabaseError) as info:
                await store.batch(
                    [("SELECT 1", None), ("SELECT abs(-9223372036854775807 - 1)", None)]
                )
            assert "statement 2 of the batch" in str(info.value)
        assert (await store.batch([("SELECT count(*) FROM t", None)]))[0].values == [(2,)]
        assert store.pool.stats().readers_busy == 0


async def test_disguised_pragmas_never_reach_a_connection(store: Store) -> None:
    # Spellings SQLite accepts for the same PRAGMA: case, quoting, schema prefix, comments,
    # empty statements and EXPLAIN in front, the value as = or (). None may act.
    import random

    rng = random.Random(20261203)
    names = ["max_page_count", "hard_heap_limit", "ignore_check_constraints", "query_only"]
    prefixes = ["", ";", " ;; ", "/* c */", "-- c\n", "EXPLAIN ", "explain query plan "]
    quotes = ["{}", '"{}"', "[{}]", "`{}`", "'{}'"]
    for _ in range(200):
        name = rng.choice(names)
        if rng.random() < 0.5:
            name = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in name)
        spelled = rng.choice(quotes).format(name)
        if rng.random() < 0.3:
            spelled = rng.choice(["main.", '"main".', "MAIN . "]) + spelled
        value = rng.choice(["1", "0", "on", "'1'", "-1"])
        tail = rng.choice([f"={value}", f" = {value}", f"({value})", f" ( {value} ) ;"])
        sql = rng.choice(prefixes) + rng.choice(["PRAGMA ", "pragma\n", "PrAgMa/**/"])
        sql += spelled + tail
        with pytest.raises(edgestore.DatabaseError) as info:
            await store.execute(sql)
        assert info.value.code in ("SQLITE_AUTH", "SQLITE_ERROR"), sql
    await _still_healthy(store)
    async with store.transaction() as tx:  # the writer still writes
        assert (await tx.execute("PRAGMA query_only")).values == [(0,)]
