"""Tables as resources: listing, keyset pages, filters, ordering, row CRUD, upsert, ETags."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import apsw
import pytest
from litestar.testing import TestClient

from .conftest import AppFactory
from .test_sql_api import assert_error, x

ROWS = "/api/v1/tables/items/rows"


def seed(client: TestClient[Any], n: int = 12) -> None:
    for i in range(1, n + 1):
        name = None if i % 5 == 0 else f"n{i % 3}"
        r = client.post(ROWS, json={"id": i, "name": name or "", "price": i * 10})
        assert r.status_code == 201, r.text


def all_pages(client: TestClient[Any], query: str, limit: int = 5) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):  # bounded
        url = f"{ROWS}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["rows"]) <= limit
        rows += body["rows"]
        cursor = body["next"]
        if cursor is None:
            return rows
    raise AssertionError("pagination did not end")


def test_list_and_describe_tables(client: TestClient[Any]) -> None:
    body = client.get("/api/v1/tables").json()
    names = [t["name"] for t in body["tables"]]
    assert "items" in names
    assert not [n for n in names if n.startswith(("sqlite_", "_edgestore"))]
    items = client.get("/api/v1/tables/items").json()
    assert items["primary_key"] == ["id"]
    assert [c["name"] for c in items["columns"]] == ["id", "name", "price", "created_at"]
    assert set(items["orderable"]) == {"id", "name"}
    assert_error(client.get("/api/v1/tables/nope"), 404, "NotFoundError")


@pytest.mark.parametrize("order", ["", "id", "-id", "name", "-name"])
def test_keyset_pages_cover_every_row_once_in_order(client: TestClient[Any], order: str) -> None:
    seed(client)
    rows = all_pages(client, f"&order={order}" if order else "")
    ids = [r["id"] for r in rows]
    assert sorted(ids) == list(range(1, 13))
    key = order.lstrip("-") or "id"
    expected = sorted(rows, key=lambda r: (r[key], r["id"]), reverse=order.startswith("-"))
    assert ids == [r["id"] for r in expected]


def test_filters(client: TestClient[Any]) -> None:
    seed(client)

    def ids(query: str) -> list[int]:
        return [r["id"] for r in all_pages(client, query, limit=100)]

    assert ids("&name=n1") == [1, 4, 7]
    assert ids("&price__gte=100&price__lt=120") == [10, 11]
    assert ids("&id__in=2,3,99") == [2, 3]
    assert ids("&name__like=n%25&price__gt=90") == [11, 12]
    assert ids("&id__ne=1&id__lte=3") == [2, 3]
    assert ids("&name__isnull=true") == []
    assert ids("&name=n2&order=-id") == [11, 8, 2]
    assert_error(client.get(f"{ROWS}?bogus=1"), 400, "InvalidRequest")
    assert_error(client.get(f"{ROWS}?price__between=1"), 400, "InvalidRequest")
    assert_error(client.get(f"{ROWS}?order=price"), 400, "InvalidRequest")  # not indexed
    assert_error(client.get(f"{ROWS}?order=nope"), 400, "InvalidRequest")
    assert_error(client.get(f"{ROWS}?cursor=garbage!"), 400, "InvalidRequest")
    assert_error(client.get(f"{ROWS}?limit=0"), 400, "InvalidRequest")
    assert_error(client.get("/api/v1/tables/nope/rows"), 404, "NotFoundError")


def test_row_crud_and_upsert(client: TestClient[Any]) -> None:
    r = client.post(ROWS, json={"name": "pen", "price": 3})
    assert r.status_code == 201, r.text
    row = r.json()["rows"][0]
    assert row["name"] == "pen"
    assert isinstance(row["id"], int)
    url = f"{ROWS}/{row['id']}"
    assert client.get(url).json()["price"] == 3
    r = client.patch(url, json={"price": 4})
    assert r.status_code == 200
    assert r.json()["price"] == 4
    assert client.get(url).json()["price"] == 4  # the cached read saw the write
    assert_error(client.post(ROWS, json={"id": row["id"], "name": "dup"}), 400)
    r = client.post(f"{ROWS}?upsert=true", json={"id": row["id"], "name": "pencil", "price": 9})
    assert r.status_code == 201, r.text
    assert client.get(url).json()["name"] == "pencil"
    r = client.post(ROWS, json=[{"name": "a"}, {"name": "b"}])
    assert r.status_code == 201
    assert len(r.json()["rows"]) == 2
    assert client.delete(url).status_code == 204
    assert_error(client.get(url), 404, "NotFoundError")
    assert_error(client.delete(url), 404, "NotFoundError")
    assert_error(client.patch(url, json={"price": 1}), 404, "NotFoundError")
    assert_error(client.patch(f"{ROWS}/1", json={}), 400, "InvalidRequest")
    assert_error(client.post(ROWS, json={"nope": 1}), 400, "InvalidRequest")
    assert_error(client.post(ROWS, json={"price": -1, "name": "x"}), 400, "ConstraintViolation")


def test_composite_and_rowid_keys(client: TestClient[Any]) -> None:
    x(client, "CREATE TABLE pairs (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b))")
    x(client, "CREATE TABLE logs (msg TEXT)")
    for a, b in (("x", 1), ("x", 2), ("y,z", 1)):
        r = client.post("/api/v1/tables/pairs/rows", json={"a": a, "b": b, "v": f"{a}{b}"})
        assert r.status_code == 201, r.text
    assert client.get("/api/v1/tables/pairs/rows/x,2").json()["v"] == "x2"
    key = quote(json.dumps(["y,z", 1]))
    assert client.get(f"/api/v1/tables/pairs/rows/{key}").json()["v"] == "y,z1"
    assert_error(client.get("/api/v1/tables/pairs/rows/x"), 400, "InvalidRequest")
    r = client.post("/api/v1/tables/pairs/rows?upsert=true", json={"a": "x", "b": 1, "v": "new"})
    assert r.status_code == 201
    assert client.get("/api/v1/tables/pairs/rows/x,1").json()["v"] == "new"
    pages = []
    cursor = None
    for _ in range(10):
        url = "/api/v1/tables/pairs/rows?limit=1" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).json()
        pages += [(r["a"], r["b"]) for r in body["rows"]]
        cursor = body["next"]
        if not cursor:
            break
    assert pages == [("x", 1), ("x", 2), ("y,z", 1)]
    desc: list[tuple[str, int]] = []
    cursor = None
    for _ in range(10):
        url = "/api/v1/tables/pairs/rows?limit=2&order=-a" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).json()
        desc += [(r["a"], r["b"]) for r in body["rows"]]
        cursor = body["next"]
        if not cursor:
            break
    assert desc == [("y,z", 1), ("x", 2), ("x", 1)]
    # A table without a declared key is addressed by rowid.
    r = client.post("/api/v1/tables/logs/rows", json={"msg": "hello"})
    rowid = r.json()["rows"][0]["rowid"]
    assert client.get(f"/api/v1/tables/logs/rows/{rowid}").json()["msg"] == "hello"
    assert client.get("/api/v1/tables/logs").json()["primary_key"] == ["rowid"]


def test_etag_and_if_none_match(client: TestClient[Any]) -> None:
    seed(client, 3)
    r = client.get(f"{ROWS}/1")
    etag = r.headers["etag"]
    again = client.get(f"{ROWS}/1", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    client.patch(f"{ROWS}/1", json={"price": 999})
    changed = client.get(f"{ROWS}/1", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    page = client.get(ROWS)
    assert client.get(ROWS, headers={"If-None-Match": page.headers["etag"]}).status_code == 304


def test_new_table_visible_without_restart(client: TestClient[Any]) -> None:
    assert_error(client.get("/api/v1/tables/later/rows"), 404)
    x(client, "CREATE TABLE later (id INTEGER PRIMARY KEY, v TEXT)")
    assert client.get("/api/v1/tables/later/rows").json() == {"rows": [], "next": None}
    x(client, "ALTER TABLE later ADD COLUMN w TEXT")
    r = client.post("/api/v1/tables/later/rows", json={"v": "a", "w": "b"})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("order", ["tag", "-tag"])
def test_keyset_over_a_nullable_indexed_column(client: TestClient[Any], order: str) -> None:
    x(client, "CREATE TABLE tagged (id INTEGER PRIMARY KEY, tag TEXT)")
    x(client, "CREATE INDEX tagged_tag ON tagged(tag)")
    tags = [None, "b", None, "a", "b", None, "c"]
    for i, tag in enumerate(tags, 1):
        client.post("/api/v1/tables/tagged/rows", json={"id": i, "tag": tag})
    got: list[int] = []
    cursor = None
    for _ in range(20):
        url = f"/api/v1/tables/tagged/rows?limit=2&order={order}"
        body = client.get(url + (f"&cursor={cursor}" if cursor else "")).json()
        got += [r["id"] for r in body["rows"]]
        cursor = body["next"]
        if not cursor:
            break
    # SQLite's order: NULLs first ascending, last descending; ties broken by the key.
    asc = sorted(range(1, 8), key=lambda i: (tags[i - 1] is not None, tags[i - 1] or "", i))
    assert got == (asc if order == "tag" else asc[::-1])


def test_hot_reads_never_go_stale(app_client: AppFactory, tmp_path: Path) -> None:
    client = app_client()
    client.post(ROWS, json={"id": 1, "name": "a", "price": 1})
    for _ in range(3):  # the repeats are served from the hot response cache
        assert client.get(f"{ROWS}/1").json()["price"] == 1
    client.patch(f"{ROWS}/1", json={"price": 2})
    assert client.get(f"{ROWS}/1").json()["price"] == 2
    x(client, "UPDATE items SET price = 3 WHERE id = 1")
    assert client.get(f"{ROWS}/1").json()["price"] == 3
    assert client.get(f"{ROWS}?id=1").json()["rows"][0]["price"] == 3
    # A write by another process shows within the hot cache's age bound.
    other = apsw.Connection(str(tmp_path / "web.db"))
    other.execute("UPDATE items SET price = 4 WHERE id = 1")
    other.close()
    for _ in range(100):  # bounded
        if client.get(f"{ROWS}/1").json()["price"] == 4:
            break
        time.sleep(0.05)
    assert client.get(f"{ROWS}/1").json()["price"] == 4


def test_new_keys_do_not_churn_the_hot_cache(client: TestClient[Any]) -> None:
    # Two windows of row reads of keys never read before make the query cache's doorkeeper
    # strict (cache/doorkeeper.py); such reads then leave the hot response cache alone.
    x(
        client,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) "
        "INSERT INTO items(id, name, price) SELECT i, 'n' || i, i FROM n",
    )
    for i in range(1, 530):
        assert client.get(f"{ROWS}/{i}").json()["id"] == i
    before = client.get("/api/v1/stats").json()["hot_cache_bytes"]
    for i in range(530, 560):
        assert client.get(f"{ROWS}/{i}").json()["price"] == i
    assert client.get("/api/v1/stats").json()["hot_cache_bytes"] == before
    # A key read again is cached as before, and a write still shows at once.
    for _ in range(3):
        assert client.get(f"{ROWS}/559").json()["price"] == 559
    assert client.get("/api/v1/stats").json()["hot_cache_bytes"] > before
    client.patch(f"{ROWS}/559", json={"price": 1})
    assert client.get(f"{ROWS}/559").json()["price"] == 1
