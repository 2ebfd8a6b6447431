"""Basic store behaviour: WAL, results, rows, read-only readers, batches, describe."""

from __future__ import annotations

import json
import os
from pathlib import Path

import apsw
import pytest

import edgestore
from edgestore.storage import Column, Store


def exists(path: Path) -> bool:
    return os.path.exists(path)


async def test_open_creates_wal_database(store: Store, db_path: Path) -> None:
    assert exists(db_path)
    res = await store.execute("PRAGMA journal_mode")
    assert res.values == [("wal",)]
    raw = apsw.Connection(str(db_path))
    assert raw.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
    raw.close()


async def test_execute_and_query_results(store: Store) -> None:
    res = await store.execute("INSERT INTO items(name, price) VALUES (?, ?)", ["a", 3])
    assert res.rows_affected == 1
    assert res.last_insert_rowid == 1
    assert res.columns == ()
    rows = await store.query("SELECT id, name, price FROM items WHERE id = ?", [1])
    assert rows.columns == (
        Column("id", "INTEGER"),
        Column("name", "TEXT"),
        Column("price", "INT"),
    )
    assert rows.values == [(1, "a", 3)]
    row = rows.rows[0]
    assert row[0] == 1
    assert row["name"] == "a"
    assert len(row) == 3
    assert list(row) == [1, "a", 3]
    assert row.keys() == ["id", "name", "price"]
    assert row.as_dict() == {"id": 1, "name": "a", "price": 3}
    assert rows.as_dicts() == [{"id": 1, "name": "a", "price": 3}]
    assert json.dumps(rows.as_dicts()) == '[{"id": 1, "name": "a", "price": 3}]'
    assert rows.rows_affected == 0
    assert rows.last_insert_rowid is None
    assert not rows.truncated
    assert not rows.cached


async def test_named_parameters_and_types(store: Store) -> None:
    await store.execute(
        "INSERT INTO items(name, price) VALUES (:name, :price)", {"name": "b", "price": None}
    )
    res = await store.query(
        "SELECT name, price, x'00ff', 1.5 AS f FROM items WHERE name = @n", {"n": "b"}
    )
    assert res.values == [("b", None, b"\x00\xff", 1.5)]


async def test_update_delete_rows_affected_and_returning(store: Store) -> None:
    for name in "abc":
        await store.execute("INSERT INTO items(name, price) VALUES (?, 1)", [name])
    res = await store.execute("UPDATE items SET price = price + 1 RETURNING name")
    assert res.rows_affected == 3
    assert sorted(v[0] for v in res.values) == ["a", "b", "c"]
    res = await store.execute("DELETE FROM items WHERE name != 'a'")
    assert res.rows_affected == 2
    assert res.last_insert_rowid is None


async def test_max_rows_truncates(store: Store) -> None:
    await store.batch([("INSERT INTO items(name) VALUES (?)", [f"n{i}"]) for i in range(10)])
    res = await store.query("SELECT name FROM items ORDER BY id", max_rows=4)
    assert res.truncated
    assert [v[0] for v in res.values] == ["n0", "n1", "n2", "n3"]
    res = await store.query("SELECT name FROM items", max_rows=10)
    assert not res.truncated
    assert len(res.values) == 10


async def test_query_refuses_writes(store: Store) -> None:
    with pytest.raises(edgestore.ReadOnlyError) as info:
        await store.query("INSERT INTO items(name) VALUES ('x')")
    assert info.value.code == "SQLITE_READONLY"
    assert (await store.query("SELECT count(*) FROM items")).values == [(0,)]


async def test_reader_connections_cannot_write(store: Store) -> None:
    await store.query("SELECT 1")  # opens a reader
    conn = store.pool.take_reader()
    assert conn is not None
    try:
        assert conn.role == "reader"
        with pytest.raises(apsw.ReadOnlyError):
            conn.db.execute("INSERT INTO items(name) VALUES ('x')")
    finally:
        store.pool.release_reader(conn)


async def test_execute_routes_reads_to_readers(store: Store) -> None:
    res = await store.execute("SELECT 1 AS one")
    assert res.values == [(1,)]
    assert store.pool.stats().readers_open >= 1


async def test_one_statement_only(store: Store) -> None:
    with pytest.raises(edgestore.SQLSyntaxError):
        await store.execute(
            "INSERT INTO items(name) VALUES ('a'); INSERT INTO items(name) VALUES ('b')"
        )
    assert (await store.query("SELECT count(*) FROM items")).values == [(0,)]
    # trailing comments and semicolons are fine
    assert (await store.query("SELECT 1; -- done")).values == [(1,)]
    with pytest.raises(edgestore.SQLSyntaxError):
        await store.query("   ")


async def test_batch_is_atomic(store: Store) -> None:
    results = await store.batch(
        [
            ("INSERT INTO items(name) VALUES (?)", ["a"]),
            ("INSERT INTO items(name) VALUES (?)", ["b"]),
            ("SELECT count(*) FROM items", None),
        ]
    )
    assert [r.rows_affected for r in results[:2]] == [1, 1]
    assert results[2].values == [(2,)]
    with pytest.raises(edgestore.ConstraintViolation) as info:
        await store.batch(
            [
                ("INSERT INTO items(name) VALUES (?)", ["c"]),
                ("INSERT INTO items(name) VALUES (?)", ["a"]),  # duplicate
            ]
        )
    assert "statement 2" in info.value.detail
    res = await store.query("SELECT name FROM items ORDER BY name")
    assert res.values == [("a",), ("b",)]


async def test_transaction_statements_refused_outside_transactions(store: Store) -> None:
    with pytest.raises(edgestore.InvalidRequest):
        await store.execute("BEGIN")
    with pytest.raises(edgestore.InvalidRequest):
        await store.query("COMMIT")


async def test_attach_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(edgestore.DatabaseError) as info:
        await store.execute(f"ATTACH '{tmp_path / 'other.db'}' AS other")
    assert info.value.code == "SQLITE_AUTH"


async def test_describe(store: Store) -> None:
    desc = await store.describe("SELECT id, name FROM items WHERE id = :id AND name = ?")
    assert desc.columns == (Column("id", "INTEGER"), Column("name", "TEXT"))
    assert desc.params == (":id", None)
    assert desc.is_readonly
    assert not desc.is_explain
    desc = await store.describe("INSERT INTO items(name) VALUES ($name)")
    assert desc.params == ("$name",)
    assert not desc.is_readonly
    assert (await store.describe("EXPLAIN SELECT 1")).is_explain
    # describe runs nothing
    assert (await store.query("SELECT count(*) FROM items")).values == [(0,)]


async def test_standalone_statements(store: Store) -> None:
    await store.execute("PRAGMA user_version = 7")
    assert (await store.query("PRAGMA user_version")).values == [(7,)]
    await store.execute("VACUUM")


async def test_closed_store_refuses(db_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None)
    await st.close()
    await st.close()  # idempotent
    with pytest.raises(edgestore.StoreClosedError):
        await st.query("SELECT 1")
    with pytest.raises(edgestore.StoreClosedError):
        await st.execute("CREATE TABLE x(a)")


async def test_open_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.db"
    async with await edgestore.open(path, schemas_dir=None) as st:
        assert (await st.query("SELECT 1")).values == [(1,)]
    assert path.exists()


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA journal_mode = DELETE",
        "PRAGMA synchronous = OFF",
        "PRAGMA hard_heap_limit = 1000",
        "PRAGMA max_page_count = 1",
        "PRAGMA ignore_check_constraints = 1",
    ],
)
async def test_connection_pragmas_cannot_be_changed(store: Store, sql: str) -> None:
    with pytest.raises(edgestore.DatabaseError) as info:
        await store.execute(sql)
    assert info.value.code == "SQLITE_AUTH"
    session = await store.session()
    with pytest.raises(edgestore.DatabaseError):
        await session.execute(sql)
    await session.close()
    assert (await store.execute("PRAGMA journal_mode")).values == [("wal",)]
    assert (await store.execute("PRAGMA foreign_keys")).values == [(1,)]
