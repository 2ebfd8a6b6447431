"""The statement policy and the per-stream foreign_keys of the libSQL server, over Hrana with
real clients: @libsql/client (node) over http and ws, libsql-client's DB-API over ws, and
the Hrana HTTP pipeline itself."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from edgestore.auth import hash_token
from tests.pool import assert_pool_idle

from .clients import run_node
from .conftest import Server, StartServer, execute

SCHEMA = [
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    "CREATE TABLE posts(id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
    "user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE)",
    "INSERT INTO users VALUES (1, 'ann'), (2, 'bob')",
    "INSERT INTO posts VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 2)",
]

# The rebuild of a parent table, statement by statement, as drizzle-kit sends it.
REBUILD = [
    "PRAGMA foreign_keys=off",
    "BEGIN",
    "CREATE TABLE __new_users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT)",
    "INSERT INTO __new_users(id, name) SELECT id, name FROM users",
    "DROP TABLE users",
    "ALTER TABLE __new_users RENAME TO users",
    "CREATE INDEX users_name ON users(name)",
    "COMMIT",
    "PRAGMA foreign_keys=on",
]


async def _setup(server: Server) -> None:
    for sql in SCHEMA:
        await server.store.execute(sql)


async def _posts(server: Server) -> int:
    value = (await server.store.query("SELECT count(*) FROM posts", cache=False)).values[0][0]
    assert isinstance(value, int)
    return value


async def _writer_cascades(server: Server) -> None:
    store = server.store
    await store.execute("INSERT INTO users(id, name) VALUES (99, 'tmp')")
    await store.execute("INSERT INTO posts VALUES (99, 'tmp', 99)")
    await store.execute("DELETE FROM users WHERE id = 99")
    rows = await store.query("SELECT count(*) FROM posts WHERE id = 99", cache=False)
    assert rows.values == [(0,)]


@pytest.mark.usefixtures("js_packages")
@pytest.mark.parametrize("scheme", ["http", "ws"])
async def test_drizzle_rebuild_through_the_js_client(scheme: str, server: Server) -> None:
    url = server.url if scheme == "http" else server.ws_url
    report = await run_node("fk_rebuild.mjs", url)
    assert report["afterMigrate"] == [4, 77]  # count(*), sum(id * 7 + user_id)
    assert report["afterScript"] == report["afterMigrate"]
    assert report["fkCheck"] == 0
    assert report["foreignKeys"] == 1
    assert report["afterCascade"] == 3  # users 3 had one post: it cascaded
    assert report["altered"] == [None, 1]
    assert report["finalCount"] == 4
    await assert_pool_idle(server.store)
    await _writer_cascades(server)


def _dbapi_rebuild(url: str) -> list[Any]:
    from libsql_client import dbapi2

    conn = dbapi2.connect(url, isolation_level=None)
    try:
        seen = []
        for sql in REBUILD:
            conn.execute(sql)
            if sql == "BEGIN":
                seen.append(conn.execute("PRAGMA foreign_keys").fetchall())
        seen.append(conn.execute("PRAGMA foreign_keys").fetchall())
        return seen
    finally:
        conn.close()


async def test_drizzle_rebuild_through_libsql_client_dbapi(server: Server) -> None:
    await _setup(server)
    seen = await asyncio.to_thread(_dbapi_rebuild, server.ws_url)
    assert [list(map(tuple, s)) for s in seen] == [[(0,)], [(1,)]]
    assert await _posts(server) == 3
    await assert_pool_idle(server.store)
    await _writer_cascades(server)


async def test_the_setting_follows_the_http_stream_between_requests(server: Server) -> None:
    # No transaction: the stream gives the writer back after every request, and takes the
    # setting along to the next one; other streams never see it.
    await _setup(server)
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = (
            await c.post(
                "/v2/pipeline",
                json={"baton": None, "requests": [execute("PRAGMA foreign_keys = OFF")]},
            )
        ).json()
        baton = body["baton"]
        other = (
            await c.post(
                "/v2/pipeline",
                json={"baton": None, "requests": [execute("DELETE FROM users WHERE id = 1")]},
            )
        ).json()
        assert other["results"][0]["type"] == "ok"
        assert await _posts(server) == 1  # the other stream's delete cascaded
        body = (
            await c.post(
                "/v2/pipeline",
                json={
                    "baton": baton,
                    "requests": [
                        execute("PRAGMA foreign_keys"),
                        execute("DELETE FROM users WHERE id = 2"),
                        {"type": "close"},
                    ],
                },
            )
        ).json()
        results = body["results"]
        assert [r["type"] for r in results] == ["ok", "ok", "ok"]
        assert results[0]["response"]["result"]["rows"] == [[{"type": "integer", "value": "0"}]]
    assert await _posts(server) == 1  # this stream's delete did not
    await assert_pool_idle(server.store)
    await _writer_cascades(server)


async def test_the_rebuild_as_one_hrana_batch(server: Server) -> None:
    await _setup(server)
    batch = {"steps": [{"stmt": {"sql": sql}} for sql in REBUILD]}
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = (
            await c.post(
                "/v2/pipeline",
                json={"baton": None, "requests": [{"type": "batch", "batch": batch}]},
            )
        ).json()
    result = body["results"][0]["response"]["result"]
    assert result["step_errors"] == [None] * len(REBUILD)
    assert await _posts(server) == 3
    await _writer_cascades(server)


async def test_read_only_callers(start_server: StartServer) -> None:
    server = await start_server(
        auth_tokens=(f"ro:{hash_token('ro-secret')}", f"rw:{hash_token('rw-secret')}")
    )
    await _setup(server)
    ro = {"authorization": "Bearer ro-secret"}
    refused = [
        "PRAGMA ignore_check_constraints = 1",
        "PRAGMA max_page_count = 1",
        "PRAGMA hard_heap_limit = 1000",
        "PRAGMA foreign_keys = OFF",
        "SAVEPOINT grab",
        "BEGIN IMMEDIATE",
        "VACUUM",
        "VACUUM INTO 'copy.db'",
    ]
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = (
            await c.post(
                "/v2/pipeline",
                headers=ro,
                json={
                    "baton": None,
                    "requests": [
                        *(execute(sql) for sql in refused),
                        execute("PRAGMA foreign_keys"),
                        execute("PRAGMA table_info(posts)"),
                        {"type": "get_autocommit"},
                        {"type": "close"},
                    ],
                },
            )
        ).json()
        results = body["results"]
        for sql, result in zip(refused, results, strict=False):
            assert result["type"] == "error", sql
            assert result["error"]["code"] in ("SQLITE_AUTH", "SQLITE_READONLY"), sql
        assert results[len(refused)]["type"] == "ok"
        assert results[len(refused) + 1]["type"] == "ok"
        assert results[len(refused) + 2]["response"]["is_autocommit"] is True
    # Nothing took effect: CHECK-free writes, no page limit, the writer is free.
    store = server.store
    await store.execute("CREATE TABLE c(x INT CHECK (x > 0))")
    with pytest.raises(Exception, match="CHECK"):
        await store.execute("INSERT INTO c VALUES (-1)")
    await store.batch([("INSERT INTO c VALUES (?)", (i + 1,)) for i in range(500)])
    assert (await store.query("PRAGMA hard_heap_limit")).values == [(0,)]
    await assert_pool_idle(store)
