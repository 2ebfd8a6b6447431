"""The table model as a library user meets it: pages, filters, cursors, keys, upsert, catalogue."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import edgestore
from edgestore import Filter, Table
from edgestore.storage import Store
from edgestore.tables import Catalog, table_names

SCHEMA = [
    "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price INTEGER)",
    "CREATE INDEX items_name ON items(name)",
    "CREATE TABLE pairs(a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID",
    "CREATE TABLE notes(body TEXT)",
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await edgestore.open(tmp_path / "t.db", schemas_dir=None, idle_timeout=0)
    for sql in SCHEMA:
        await st.execute(sql)
    for i in range(1, 13):
        name = None if i % 5 == 0 else f"n{i % 3}"
        await st.execute("INSERT INTO items VALUES (?, ?, ?)", [i, name, i * 10])
    try:
        yield st
    finally:
        await st.close()


async def all_rows(table: Table, limit: int = 5, **kwargs: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = None
    for _ in range(100):  # bounded
        page = await table.page(limit=limit, after=after, **kwargs)
        assert len(page.rows) <= limit
        rows += page.rows
        after = page.next
        if after is None:
            return rows
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("order_by", "descending"), [(None, False), ("id", True), ("name", False), ("name", True)]
)
async def test_keyset_pages_cover_every_row_once_in_order(
    store: Store, order_by: str | None, descending: bool
) -> None:
    rows = await all_rows(Table(store, "items"), order_by=order_by, descending=descending)
    key = order_by or "id"
    # SQLite sorts NULL first: stand in for it with "" (every name is "n0".."n2" or NULL).
    expected = sorted(rows, key=lambda r: (r[key] or "", r["id"]), reverse=descending)
    assert [r["id"] for r in rows] == [r["id"] for r in expected]
    assert sorted(r["id"] for r in rows) == list(range(1, 13))


async def test_filters_typed_and_mapping(store: Store) -> None:
    items = Table(store, "items")

    async def ids(where: Any, **kwargs: Any) -> list[int]:
        return [r["id"] for r in await all_rows(items, limit=100, where=where, **kwargs)]

    assert await ids({"name": "n1"}) == [1, 4, 7]
    assert await ids({"name": None}) == [5, 10]
    assert await ids([Filter("price", "gte", 100), Filter("price", "lt", 120)]) == [10, 11]
    assert await ids([Filter("id", "in", [2, 3, 99])]) == [2, 3]
    assert await ids([Filter("name", "like", "n%"), Filter("price", "gt", 90)]) == [11, 12]
    assert await ids([Filter("name", "isnull", False), Filter("id", "lte", 3)]) == [1, 2, 3]
    assert await ids({"name": "n2"}, order_by="id", descending=True) == [11, 8, 2]
    with pytest.raises(edgestore.InvalidRequest, match="no column 'bogus'"):
        await items.page(where={"bogus": 1})
    with pytest.raises(edgestore.InvalidRequest, match="not an indexed column"):
        await items.page(order_by="price")


async def test_cursor_is_opaque_and_checked(store: Store) -> None:
    items = Table(store, "items")
    first = await items.page(limit=2, order_by="name")
    assert first.next is not None
    with pytest.raises(edgestore.InvalidRequest, match="cursor"):
        await items.page(limit=2, after="not-a-cursor")
    with pytest.raises(edgestore.InvalidRequest, match="does not match"):
        await items.page(limit=2, after=first.next)  # a (name, id) cursor for an id order


async def test_cursor_keeps_64_bit_keys_and_blobs(store: Store) -> None:
    await store.execute("CREATE TABLE big(k BLOB PRIMARY KEY, n INTEGER) WITHOUT ROWID")
    keys = [b"\x00\xff", b"\x01", b"\x02"]
    await store.batch([("INSERT INTO big VALUES (?, ?)", [k, 2**63 - 1]) for k in keys])
    rows = await all_rows(Table(store, "big"), limit=1)
    assert [r["k"] for r in rows] == keys
    assert {r["n"] for r in rows} == {2**63 - 1}


async def test_composite_keys_get_update_delete(store: Store) -> None:
    pairs = Table(store, "pairs")
    written = await pairs.insert([{"a": "x,y", "b": 1, "v": "one"}, {"a": "x,y", "b": 2}])
    assert written == [{"a": "x,y", "b": 1, "v": "one"}, {"a": "x,y", "b": 2, "v": None}]
    assert await pairs.get(("x,y", 1)) == {"a": "x,y", "b": 1, "v": "one"}
    assert await pairs.get(["x,y", "2"]) == {"a": "x,y", "b": 2, "v": None}  # text coerced
    assert await pairs.update(("x,y", 2), {"v": "two"}) == {"a": "x,y", "b": 2, "v": "two"}
    assert await pairs.update(("x,y", 3), {"v": "none"}) is None
    assert await pairs.delete(("x,y", 1)) is True
    assert await pairs.delete(("x,y", 1)) is False
    with pytest.raises(edgestore.InvalidRequest, match="2-column primary key"):
        await pairs.get("x,y")


async def test_upsert_on_the_primary_key(store: Store) -> None:
    items = Table(store, "items")
    with pytest.raises(edgestore.ConstraintViolation):
        await items.insert({"id": 1, "name": "dup"})
    assert await items.insert({"id": 1, "name": "dup"}, upsert=True) == [
        {"id": 1, "name": "dup", "price": 10}
    ]
    assert (await items.insert({"id": 1}, upsert=True)) == []  # nothing to update: DO NOTHING
    with pytest.raises(edgestore.InvalidRequest, match="no primary key to upsert on"):
        await Table(store, "notes").insert({"body": "x"}, upsert=True)


async def test_rowid_tables_use_the_rowid(store: Store) -> None:
    notes = Table(store, "notes")
    [row] = await notes.insert({"body": "hello"})
    assert row == {"rowid": 1, "body": "hello"}
    assert await notes.get(1) == row
    assert (await notes.page(where={"rowid": 1})).rows == [row]


async def test_catalogue_describes_and_follows_schema_changes(store: Store) -> None:
    assert await table_names(store) == ["items", "notes", "pairs"]
    info = await Table(store, "items").info()
    assert info.pk == ("id",)
    assert [c.name for c in info.columns.values()] == ["id", "name", "price"]
    assert info.indexed == frozenset({"id", "name"})
    assert [(i.name, i.columns, i.unique) for i in info.indexes] == [
        ("items_name", ("name",), False)
    ]
    pairs = await Table(store, "pairs").info()
    assert pairs.pk == ("a", "b")
    assert pairs.without_rowid
    assert Catalog.of(store) is Catalog.of(store)

    with pytest.raises(edgestore.NotFoundError):
        await Table(store, "later").info()
    await store.execute("CREATE TABLE later(id INTEGER PRIMARY KEY, v TEXT)")
    assert "later" in await table_names(store)
    await store.execute("CREATE UNIQUE INDEX items_price ON items(price)")
    info = await Table(store, "items").info()  # the schema change dropped the cached one
    assert ("items_price", ("price",), True) in [
        (i.name, i.columns, i.unique) for i in info.indexes
    ]
    assert (await Table(store, "items").page(order_by="price", limit=1)).rows[0]["id"] == 1


def test_tables_never_import_a_framework_and_storage_never_imports_tables() -> None:
    src = Path(edgestore.__file__).parent
    for path in (src / "tables").glob("*.py"):
        names = _imported(path)
        assert not {n.split(".")[0] for n in names} & {"litestar", "click", "granian"}, path
        assert not any(n.startswith("edgestore.web") or ".web" in n for n in names), path
    for layer in ("storage", "cache", "memory"):
        for path in (src / layer).rglob("*.py"):
            assert not any("tables" in n.split(".") for n in _imported(path)), path


def _imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found
